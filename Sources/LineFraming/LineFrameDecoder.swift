import NIOCore

/// What the framing layer hands on: a complete line, or word that a line was too long.
public enum InboundFrame: Sendable {
    case line(ByteBuffer)
    /// The line exceeded the limit; its bytes were discarded up to and including its newline.
    case tooLong
}

/// Splits the byte stream at `\n` (dropping a preceding `\r`), holding at most `maxLineBytes` of
/// an unfinished line: a longer one is discarded as it arrives and reported once as `.tooLong`,
/// so the other side can never make us buffer without bound. The server answers `.tooLong` with
/// `-LINE_TOO_LONG`; the client gives up on a server that sends one.
public struct LineFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = InboundFrame

    public let maxLineBytes: Int
    /// True while skipping the rest of an over-long line.
    private var discarding = false
    /// Bytes of the unfinished line already searched for a newline: a line that trickles in a
    /// few bytes at a time is searched once, not once per arrival.
    private var scanned = 0

    public init(maxLineBytes: Int) { self.maxLineBytes = maxLineBytes }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let view = buffer.readableBytesView
        if discarding {
            guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else {
                buffer.moveReaderIndex(forwardBy: view.count)
                return .needMoreData
            }
            buffer.moveReaderIndex(to: newline + 1)
            discarding = false
            return .continue
        }
        guard let newline = view[(view.startIndex + scanned)...].firstIndex(of: UInt8(ascii: "\n")) else {
            scanned = view.count
            // +1: a line of exactly the limit may still be waiting for the `\r` of its `\r\n`.
            if view.count > maxLineBytes + 1 {
                buffer.moveReaderIndex(forwardBy: view.count)
                discarding = true
                scanned = 0
                context.fireChannelRead(wrapInboundOut(.tooLong))
                return .continue
            }
            return .needMoreData
        }
        scanned = 0
        var length = newline - view.startIndex
        let endsWithCR = length > 0 && view[newline - 1] == UInt8(ascii: "\r")
        if endsWithCR { length -= 1 }
        let line = buffer.readSlice(length: length)!
        buffer.moveReaderIndex(forwardBy: endsWithCR ? 2 : 1)
        context.fireChannelRead(wrapInboundOut(length > maxLineBytes ? .tooLong : .line(line)))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        // An unterminated last line is incomplete: the other side went away before finishing it.
        buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
        return .needMoreData
    }
}
