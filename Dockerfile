# syntax=docker/dockerfile:1
# Build stage: dependencies are compiled in their own layer, so editing src/ rebuilds only
# sessiond itself. The manifest names a benchmark too, so a stand-in for it keeps cargo
# reading the manifest. (scripts/docker-build-replay runs this stage's steps in CI.)
FROM rust:1-slim-bookworm AS build
WORKDIR /app
COPY Cargo.toml Cargo.lock ./
RUN mkdir src benches \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && echo 'fn main() {}' > benches/store.rs \
    && cargo build --release --locked \
    && rm -rf src
COPY src ./src
RUN touch src/main.rs src/lib.rs && cargo build --release --locked

# Runtime stage: only the binary and CA certificates, run as an unprivileged user.
FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 sessiond \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin sessiond \
    && mkdir -p /var/lib/sessiond \
    && chown 10001:10001 /var/lib/sessiond
COPY --from=build /app/target/release/sessiond /usr/local/bin/sessiond
USER 10001:10001
ENV SESSIOND_BIND=0.0.0.0:8080 \
    SESSIOND_DATA_DIR=/var/lib/sessiond
VOLUME ["/var/lib/sessiond"]
EXPOSE 8080
# The binary probes itself: the image needs no curl or shell.
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/sessiond", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/sessiond"]
