import NIOCore

/// Splits the server's byte stream into lines (without `\n` or `\r\n`). Unlike NIOExtras'
/// `LineBasedFrameDecoder` it refuses to buffer a line longer than `maxLength`: a broken or
/// hostile server must not make the client grow without bound. The connection is then closed
/// with `ClientError.lineTooLong`.
struct BoundedLineDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    let maxLength: Int
    /// How far the previous call already looked for a newline, so a long line is scanned once.
    private var scanned = 0

    init(maxLength: Int) { self.maxLength = maxLength }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let view = buffer.readableBytesView
        guard let newline = view.dropFirst(scanned).firstIndex(of: UInt8(ascii: "\n")) else {
            scanned = view.count
            if view.count > maxLength { throw ClientError.lineTooLong(maxLength) }
            return .needMoreData
        }
        let length = newline - view.startIndex
        guard length <= maxLength else { throw ClientError.lineTooLong(maxLength) }
        var line = buffer.readSlice(length: length)!
        buffer.moveReaderIndex(forwardBy: 1)
        if line.readableBytesView.last == UInt8(ascii: "\r") { line.moveWriterIndex(to: line.writerIndex - 1) }
        scanned = 0
        context.fireChannelRead(wrapInboundOut(line))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // A last line without its newline is incomplete (the server went away mid-line): drop it.
        while try decode(context: context, buffer: &buffer) == .continue {}
        buffer.moveReaderIndex(to: buffer.writerIndex)
        return .needMoreData
    }
}
