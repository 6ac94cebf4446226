import FileSupport
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A memory-mapped file, private and copy-on-write: pages are read from disk only when touched, so
/// opening a large checkpoint costs nothing until its tensors are used, and writes into the mapping
/// (training a Float32 tensor that borrows it) never reach the file.
final class MappedFile: @unchecked Sendable {
    let path: String
    let count: Int
    private let base: UnsafeMutableRawPointer?
    private let lock = NSLock()
    /// Some range was handed out by `floats` (see `dropPages`).
    private var lent = false

    init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw ModelIOError(.unreadable, file: path, "cannot open file (\(String(cString: strerror(errno))))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw ModelIOError(.unreadable, file: path, "cannot stat file (\(String(cString: strerror(errno))))")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw ModelIOError(.unreadable, file: path, "not a regular file")
        }
        count = Int(st.st_size)
        if count == 0 {
            base = nil
            return
        }
        let p = mmap(nil, count, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else {
            throw ModelIOError(.unreadable, file: path, "cannot map file (\(String(cString: strerror(errno))))")
        }
        base = p
    }

    deinit {
        if let base { munmap(base, count) }
    }

    /// Tells the kernel the pages wholly inside `range` are no longer needed by this process: they
    /// leave its resident set (the page cache may keep them). Loading converts each tensor into its
    /// own buffer once, so without this a checkpoint would count twice towards peak memory.
    func dropPages(_ range: Range<Int>) {
        // A tensor that borrows the mapping may have written private copies of its pages, which
        // MADV_DONTNEED would throw away: once anything is lent, nothing is dropped.
        lock.lock()
        let lent = self.lent
        lock.unlock()
        guard let base, !range.isEmpty, !lent else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (range.lowerBound + page - 1) / page * page
        let end = range.upperBound / page * page
        if end > start { _ = madvise(base + start, end - start, Int32(MADV_DONTNEED)) }
    }

    /// `range` as Floats in place (for a tensor to borrow), or nil when it does not start on a
    /// Float boundary. Valid while `self` is alive.
    func floats(_ range: Range<Int>) -> UnsafeMutablePointer<Float>? {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "MappedFile: range \(range) outside 0..<\(count)")
        guard let base, !range.isEmpty else { return nil }
        let p = base + range.lowerBound
        guard Int(bitPattern: p) % MemoryLayout<Float>.alignment == 0 else { return nil }
        lock.lock()
        lent = true
        lock.unlock()
        return p.bindMemory(to: Float.self, capacity: range.count / MemoryLayout<Float>.size)
    }

    /// The bytes in `range`; valid while `self` is alive.
    func withBytes<R>(_ range: Range<Int>, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "MappedFile: range \(range) outside 0..<\(count)")
        guard let base else { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return try body(UnsafeRawBufferPointer(start: base + range.lowerBound, count: range.count))
    }
}

/// The bytes of a small JSON file (config.json, an index), refused unread when it is not a
/// regular file (a FIFO or /dev/zero would never end) or larger than `limit`.
func readSmallFile(_ url: URL, limit: Int, what: String) throws -> Data {
    do { return try readBoundedFile(atPath: url.path, limit: limit) } catch {
        switch error {
        case .notFound:
            throw ModelIOError(.unreadable, file: url.path, "cannot read \(what) (\(String(cString: strerror(ENOENT))))")
        case .unreadable(let reason):
            throw ModelIOError(.unreadable, file: url.path, "cannot read \(what) (\(reason))")
        case .notRegularFile(let found):
            throw ModelIOError(.unreadable, file: url.path, "\(what) is not a regular file (found \(found))")
        case .tooLarge(let size?, let limit):
            throw ModelIOError(.tooLarge, file: url.path, "\(what) is \(size) bytes; at most \(limit) are read")
        case .tooLarge(nil, let limit):
            throw ModelIOError(.tooLarge, file: url.path, "\(what) grew past \(limit) bytes while being read; at most \(limit) are read")
        }
    }
}
