# Vigil as a container image: a static binary on distroless.
#
#   docker build -t vigil .
#   docker run --rm -p 4480:4480 \
#     -e VIGIL_SERVE_PUBLIC_HOST=0.0.0.0 -e VIGIL_SERVE_ADMIN_HOST=0.0.0.0 \
#     -e VIGIL_DSN=postgres://... -e VIGIL_SECRETS_SYSTEM=... \
#     -e VIGIL_ADMIN_API_KEY=... -e VIGIL_HOOKS_API_KEY=... \
#     vigil serve --migrate
#
# Listeners bind 127.0.0.1 by default, which nothing outside the container
# reaches: set VIGIL_SERVE_PUBLIC_HOST and VIGIL_SERVE_ADMIN_HOST to 0.0.0.0
# and publish only the public port (4480). The admin port (4481: Kratos
# hooks, admin API, metrics) belongs on a private network.

FROM golang:1.26 AS build
WORKDIR /src
# Dependencies first, so that a change to the code reuses this layer.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=dev
# Pure Go (the SQLite driver too), so the binary needs no libc.
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/vigil ./cmd/vigil

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/vigil /usr/local/bin/vigil
# The default SQLite file (sqlite://vigil.db) lands in the working
# directory; nonroot may write to its home. Use PostgreSQL for anything real.
WORKDIR /home/nonroot
USER nonroot:nonroot
EXPOSE 4480 4481
ENTRYPOINT ["/usr/local/bin/vigil"]
CMD ["serve"]
