# Build: docker build -t holoptic .
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libpq-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
# The bundled SQLite's build options (.cargo/config.toml).
COPY .cargo ./.cargo
COPY src ./src
COPY migrations ./migrations
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/holoptic --create-home holoptic
COPY --from=build /src/target/release/holoptic /usr/local/bin/holoptic
USER holoptic
WORKDIR /var/lib/holoptic
ENV HOLOPTIC_BIND=0.0.0.0:8080 \
    DATABASE_URL=sqlite:///var/lib/holoptic/holoptic.db \
    HOLOPTIC_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=5 CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["holoptic"]
CMD ["serve"]
