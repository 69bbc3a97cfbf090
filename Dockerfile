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
# Safe by default: the plain listener stays on the container's own loopback, so an image started
# as it is serves nobody in plain text. To serve others, either use TLS (--tls-listen 0.0.0.0:7443
# --tls-cert … --tls-key …, with the files mounted), or face the container's network with
# ORDERLY_LISTEN=0.0.0.0:7400 and --allow-plaintext-remote where the published port stays on a
# trusted interface: docker-compose.yml does that, publishing it on the host's loopback only.
ENV ORDERLY_SQL_DIR=/usr/share/orderly/sql \
    ORDERLY_LISTEN=127.0.0.1:7400
USER orderly
EXPOSE 7400
ENTRYPOINT ["orderlyd"]
CMD ["serve"]
