# Multi-stage: build with the Swift toolchain, run on a slim Debian with only libpq (and libedit
# for the orderly client).
FROM swift:6.0-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libpq-dev libedit-dev pkg-config && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources ./Sources
COPY Tests ./Tests
# The Swift runtime is linked in statically, so the runtime image needs only libpq and libedit.
RUN swift build -c release --static-swift-stdlib \
    && mkdir /out && cp "$(swift build -c release --show-bin-path)"/orderlyd "$(swift build -c release --show-bin-path)"/orderly /out/

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 libedit2 ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* && useradd --system --uid 7400 orderly
COPY --from=build /out/ /usr/local/bin/
COPY sql /usr/share/orderly/sql
ENV ORDERLY_SQL_DIR=/usr/share/orderly/sql
USER orderly
EXPOSE 7400
ENTRYPOINT ["orderlyd"]
# Inside a container the listener must face the container's network; publish the port only where
# plaintext is acceptable (docker-compose.yml publishes it on the host's loopback), or use TLS.
CMD ["--listen", "0.0.0.0:7400", "--allow-plaintext-remote"]
