// palimpsest-fuzz: the parser fuzz targets in one binary.
//
//   palimpsest-fuzz TARGET [FILE|DIR ...]       replay: run TARGET on each file (a plain build)
//   palimpsest-fuzz TARGET [libFuzzer flags] CORPUS...   fuzz (built by scripts/fuzz.sh with -DFUZZING)
//
// One binary rather than one per parser keeps the instrumented build to a single link.
import Foundation

func usage() -> Never {
    FileHandle.standardError.write(Data("usage: palimpsest-fuzz TARGET [args...]; targets: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))\n".utf8))
    exit(2)
}

var arguments = CommandLine.arguments
guard arguments.count >= 2, let target = FuzzTarget(rawValue: arguments[1]) else { usage() }
// The scratch files live for the process only.
atexit { try? FileManager.default.removeItem(at: FuzzTarget.scratch) }

#if FUZZING
nonisolated(unsafe) var selected = target
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

// libFuzzer sees the program name and its own flags; the target name is ours.
var cArgs: [UnsafeMutablePointer<CChar>?] = ([arguments[0]] + arguments.dropFirst(2)).map { strdup($0) } + [nil]
var argc = Int32(cArgs.count - 1)
let status = cArgs.withUnsafeMutableBufferPointer { buffer -> Int32 in
    var argv = buffer.baseAddress!
    return LLVMFuzzerRunDriver(&argc, &argv) { bytes, count in
        let data = count == 0 || bytes == nil ? Data() : Data(bytes: bytes!, count: count)
        selected.run(data)
        return 0
    }
}
exit(status)
#else
// Replay: every file given (directories are walked), in a stable order.
var files: [URL] = []
for path in arguments.dropFirst(2) {
    let url = URL(fileURLWithPath: path)
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
        FileHandle.standardError.write(Data("palimpsest-fuzz: no such file \(path)\n".utf8)); exit(2)
    }
    if isDir.boolValue {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        files += names.sorted().filter { !$0.hasPrefix(".") }.map { url.appendingPathComponent($0) }
    } else {
        files.append(url)
    }
}
let start = Date()
for file in files {
    guard let data = try? Data(contentsOf: file) else { continue }
    target.run(data)
}
print("palimpsest-fuzz \(target.rawValue): \(files.count) inputs replayed in \(String(format: "%.2f", Date().timeIntervalSince(start))) s, no crash")
#endif
