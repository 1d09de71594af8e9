# The single `portico` binary in a small, non-root runtime image, with the
# npm packages the dashboard's terminal page loads (xterm.js).
#   docker build -t portico .
# Without a Docker engine or a registry, tests/image/build.sh builds the same
# image with buildah: it runs the build and assets stages' commands on the
# machine, makes the runtime base from Debian's packages, and builds the
# runtime stage below as written (the test suite installs that image with the
# chart on a real node).
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# The workspace's other member (the local cluster for `portico dev` and the
# tests) and the bench targets: cargo reads them, the build below does not
# compile them.
COPY tests/cluster ./tests/cluster
COPY benches ./benches
COPY ui ./ui
COPY config ./config
# Without the `dev` feature: no etcd, no local cluster, no `portico dev`.
RUN cargo build --release --locked --no-default-features --bin portico && strip target/release/portico

FROM docker.io/library/node:22-bookworm-slim AS assets
WORKDIR /ui
COPY ui/package.json ui/package-lock.json ./
RUN npm ci --no-audit --no-fund --omit=dev

FROM ${RUNTIME_IMAGE} AS runtime
COPY --from=build /src/target/release/portico /usr/local/bin/portico
# The dashboard's assetsDir default.
COPY --from=assets /ui/node_modules /usr/share/portico/node_modules
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/portico"]
CMD ["operator", "--config=/etc/portico/operator.yaml"]
