import NIOCore
import NIOPosix
import OrderlyClient

/// Short messages for connection failures, instead of NIO's long descriptions.
enum ConnectionFailure {
    static func describe(_ error: Error) -> String {
        switch error {
        case let error as NIOConnectionError:
            // One error per address tried (IPv4, IPv6); the first says it well enough.
            if let first = error.connectionErrors.first { return describe(first.error) }
            if error.dnsAError != nil || error.dnsAAAAError != nil { return "unknown host \(error.host)" }
            return "\(error)"
        case let error as IOError:
            return String(cString: strerror(error.errnoCode))
        case let error as ClientError:
            return error.description
        case is ChannelError:
            return "the connection failed (\(error))"
        default:
            return "\(error)"
        }
    }
}
