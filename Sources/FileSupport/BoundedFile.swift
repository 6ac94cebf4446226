import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why `readBoundedFile` refused or could not read a file. Neutral: each module words it in its
/// own error type, naming the file and the sort of file it expected.
public enum BoundedReadError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Nothing at the path.
    case notFound
    /// Not a regular file once links are followed; `found` names what it is ("a FIFO", "a directory", ...).
    case notRegularFile(found: String)
    /// Larger than `limit` bytes. `size` is the size the file had when opened, or nil when it grew
    /// past the limit while being read.
    case tooLarge(size: Int?, limit: Int)
    /// Opening, inspecting or reading failed; `reason` is the system's.
    case unreadable(reason: String)

    /// A plain wording without the path, for callers that need no message of their own.
    public var description: String {
        switch self {
        case .notFound: return "no such file"
        case .notRegularFile(let found): return "not a regular file (found \(found))"
        case .tooLarge(let size?, let limit): return "the file is \(size) bytes; at most \(limit) are read"
        case .tooLarge(nil, let limit): return "the file grew past \(limit) bytes while being read; at most \(limit) are read"
        case .unreadable(let reason): return "cannot read the file (\(reason))"
        }
    }
}

/// The bytes of a file that is read whole, refused unread unless it is a regular file (links
/// followed) of at most `limit` bytes, so that a FIFO, a link to /dev/zero or a huge file fails
/// at once instead of hanging or filling memory. The read stays bounded if the file grows.
public func readBoundedFile(atPath path: String, limit: Int) throws(BoundedReadError) -> Data {
    precondition(limit >= 0 && limit < Int.max, "readBoundedFile: limit \(limit) out of range")
    // O_NONBLOCK: opening a FIFO that no one writes must not wait. fstat on the open descriptor
    // then checks the very file that would be read.
    let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
    guard fd >= 0 else {
        let code = errno
        throw code == ENOENT ? .notFound : .unreadable(reason: String(cString: strerror(code)))
    }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0 else { throw .unreadable(reason: String(cString: strerror(errno))) }
    guard (st.st_mode & S_IFMT) == S_IFREG else { throw .notRegularFile(found: fileTypeName(st.st_mode)) }
    let size = Int(st.st_size)
    guard size <= limit else { throw .tooLarge(size: size, limit: limit) }
    // One byte past the expected end, to see a file that grew; more room only if it did.
    var data = Data(count: size + 1)
    var filled = 0
    while filled <= limit {
        if filled == data.count { data.count = min(limit + 1, max(2 * data.count, 1 << 16)) }
        let n = data.withUnsafeMutableBytes { read(fd, $0.baseAddress! + filled, $0.count - filled) }
        if n < 0 {
            if errno == EINTR { continue }
            throw .unreadable(reason: String(cString: strerror(errno)))
        }
        if n == 0 { break }
        filled += n
    }
    guard filled <= limit else { throw .tooLarge(size: nil, limit: limit) }
    data.count = filled
    return data
}

/// The kind of a non-regular file, as "a FIFO", for messages.
func fileTypeName(_ mode: mode_t) -> String {
    switch mode & S_IFMT {
    case S_IFDIR: return "a directory"
    case S_IFCHR: return "a character device"
    case S_IFBLK: return "a block device"
    case S_IFIFO: return "a FIFO"
    case S_IFSOCK: return "a socket"
    case S_IFLNK: return "a symbolic link"
    default: return "something else"
    }
}
