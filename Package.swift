// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "orderly",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "orderlyd", targets: ["orderlyd"]),
        .executable(name: "orderly", targets: ["orderly"]),
        .executable(name: "orderly-bench", targets: ["orderly-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        // Tests only: the programs they run (Foundation's Process crashed the test process).
        .package(url: "https://github.com/swiftlang/swift-subprocess.git", from: "1.0.2"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        // libedit (BSD licence) for the REPL's line editing and history.
        .systemLibrary(
            name: "CLibEdit",
            pkgConfig: "libedit",
            providers: [.apt(["libedit-dev"])]
        ),
        .target(
            name: "PostgresClient",
            dependencies: [
                "CLibPQ",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "OrderlyProtocol"),
        // The line framing both ends of the protocol use.
        .target(name: "LineFraming", dependencies: [.product(name: "NIOCore", package: "swift-nio")]),
        // Process limits that orderlyd and orderly-bench both raise.
        .target(name: "SystemLimits"),
        // Tasks that run on their connection's event loop (orderlyd's sessions, orderly-bench).
        .target(name: "LoopExecutor", dependencies: [.product(name: "NIOCore", package: "swift-nio")]),
        // The database side: the pool's use, the command registry, the LISTEN connection, the
        // migrator and the embedded cluster; SQLSTATEs become protocol error codes here.
        .target(
            name: "OrderlyStore",
            dependencies: [
                "OrderlyProtocol",
                "PostgresClient",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Customer e-mail to an SMTP relay (STARTTLS, AUTH PLAIN), for the outbox.
        .target(
            name: "SMTPClient",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // Sessions, the channel pipeline, the carriers' webhook and the server's lifecycle.
        .target(
            name: "OrderlyServer",
            dependencies: [
                "LineFraming",
                "LoopExecutor",
                "OrderlyProtocol",
                "OrderlyStore",
                "PostgresClient",
                "SMTPClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        .target(
            name: "OrderlyClient",
            dependencies: [
                "LineFraming",
                "OrderlyProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .executableTarget(
            name: "orderlyd",
            dependencies: [
                "OrderlyServer",
                "SMTPClient",
                "OrderlyStore",
                "PostgresClient",
                "SystemLimits",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "orderly",
            dependencies: [
                "OrderlyClient",
                "CLibEdit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // Load generator and data generator (`make bench`).
        .executableTarget(
            name: "orderly-bench",
            dependencies: [
                "LoopExecutor",
                "OrderlyClient",
                "OrderlyProtocol",
                "PostgresClient",
                "SystemLimits",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .target(
            name: "OrderlyTestSupport",
            dependencies: [
                "PostgresClient", "OrderlyProtocol", "OrderlyStore", "OrderlyServer", "OrderlyClient",
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            path: "Tests/OrderlyTestSupport"
        ),
        .testTarget(name: "OrderlyProtocolTests", dependencies: ["OrderlyProtocol"]),
        .testTarget(name: "PostgresClientTests", dependencies: ["PostgresClient", "OrderlyTestSupport"]),
        .testTarget(name: "OrderlyStoreTests", dependencies: ["OrderlyStore", "OrderlyProtocol"]),
        .testTarget(
            name: "OrderlyServerTests",
            dependencies: [
                "OrderlyServer", "OrderlyStore", "OrderlyProtocol", "LineFraming", "OrderlyClient", "OrderlyTestSupport", "SMTPClient",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]),
        .testTarget(
            name: "OrderlyCLITests",
            dependencies: [
                // The tests run the `orderly` and `orderly-bench` executables; depending on them makes
                // `swift test` build them.
                "orderly",
                "orderly-bench",
                "OrderlyClient",
                "OrderlyTestSupport",
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
    ]
)
