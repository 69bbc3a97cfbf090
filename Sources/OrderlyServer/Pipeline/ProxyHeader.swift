import NIOCore

/// The PROXY protocol version 2 header (haproxy's `send-proxy-v2`): the binary preamble a proxy
/// sends before the client's own bytes, naming the client's address. Only its parsing; the
/// handler that uses it is `ProxyHeaderHandler`. Specification:
/// https://www.haproxy.org/download/2.8/doc/proxy-protocol.txt (section 2.2).
enum ProxyHeader {
    static let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    static let fixedLength = 16

    enum Parsed: Equatable {
        /// Not all of it has arrived yet.
        case needMore
        case invalid(String)
        /// The header is `length` bytes; `source` is the client's address, or nil when the header
        /// names none (a LOCAL connection such as the proxy's own health check, or an address
        /// family without one): then the connection's own peer is the client.
        case complete(source: String?, length: Int)
    }

    static func parse(_ buffer: ByteBuffer) -> Parsed {
        let bytes = buffer.readableBytesView
        let start = bytes.startIndex
        let seen = min(bytes.count, signature.count)
        guard bytes.prefix(seen).elementsEqual(signature.prefix(seen)) else {
            return .invalid("the connection did not start with a PROXY protocol v2 header")
        }
        guard bytes.count >= fixedLength else { return .needMore }
        let versionAndCommand = bytes[start + 12]
        guard versionAndCommand >> 4 == 2 else { return .invalid("PROXY protocol version \(versionAndCommand >> 4), not 2") }
        let command = versionAndCommand & 0x0F
        guard command <= 1 else { return .invalid("unknown PROXY protocol command \(command)") }
        let family = bytes[start + 13] >> 4
        let addressLength = Int(bytes[start + 14]) << 8 | Int(bytes[start + 15])
        let length = fixedLength + addressLength
        guard bytes.count >= length else { return .needMore }
        // LOCAL: the proxy speaking for itself (health checks); the addresses are to be ignored.
        guard command == 1 else { return .complete(source: nil, length: length) }
        let addresses = buffer.getSlice(at: buffer.readerIndex + fixedLength, length: addressLength)!
        switch family {
        case 1:  // AF_INET: source, destination (4 bytes each), then the two ports
            guard addressLength >= 12, let source = try? SocketAddress(packedIPAddress: addresses.getSlice(at: addresses.readerIndex, length: 4)!, port: 0)
            else { return .invalid("a PROXY protocol IPv4 header too short for its addresses") }
            return .complete(source: source.ipAddress, length: length)
        case 2:  // AF_INET6: 16 bytes each
            guard addressLength >= 36, let source = try? SocketAddress(packedIPAddress: addresses.getSlice(at: addresses.readerIndex, length: 16)!, port: 0)
            else { return .invalid("a PROXY protocol IPv6 header too short for its addresses") }
            return .complete(source: source.ipAddress, length: length)
        default:  // AF_UNSPEC, AF_UNIX: no IP address to take
            return .complete(source: nil, length: length)
        }
    }
}
