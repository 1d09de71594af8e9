# The single `portico` binary in a small, non-root runtime image.
#   docker build -t portico .
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked --bin portico && strip target/release/portico

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/portico /usr/local/bin/portico
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/portico"]
CMD ["operator", "--config=/etc/portico/operator.yaml"]
