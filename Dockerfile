# syntax=docker/dockerfile:1
# otlp-tape in a container; docker-compose.yml's `capture` profile builds it.
#
#   docker build -t otlp-tape .
#   docker run --rm -v "$PWD/sessions:/data/sessions" otlp-tape sessions list
#
# The builder's Rust must be at least the workspace's rust-version
# (Cargo.toml); crates/cli/tests/it/stack.rs checks it.

FROM rust:1.95-slim-bookworm AS builder
WORKDIR /src
COPY . .
# The caches keep the registry and build artefacts between builds; the binary
# is copied out of the cached target directory in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p otlp-tape \
    && cp target/release/otlp-tape /usr/local/bin/otlp-tape

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# uid 1000 so that a bind-mounted ./sessions of a typical desktop user is writable.
RUN groupadd --gid 1000 otlp-tape \
    && useradd --uid 1000 --gid otlp-tape --no-create-home --shell /usr/sbin/nologin otlp-tape \
    && mkdir -p /data/sessions \
    && chown -R otlp-tape:otlp-tape /data
COPY --from=builder /usr/local/bin/otlp-tape /usr/local/bin/otlp-tape
USER otlp-tape
# The default store is the working directory: sessions go in /data/sessions.
WORKDIR /data
EXPOSE 4317 4318
ENTRYPOINT ["/usr/local/bin/otlp-tape"]
CMD ["--help"]
