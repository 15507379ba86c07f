# A static picbot in an image with nothing else: CGO_ENABLED=0, time zones
# embedded (time/tzdata), CA certificates copied for the vendors' HTTPS.
#   docker build -t picbot .
#   docker run -d -v picbot-data:/data -e PICBOT_TELEGRAM_TOKEN=... -p 8080:8080 picbot
# The built-in configuration is deploy/docker.yaml: a token in the environment
# turns its platform on; with none, the bot says so and exits.
FROM golang:1.26 AS build
ARG VERSION=""
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /picbot ./cmd/bot
# The data directory, owned by the user the bot runs as, so that a new
# named volume mounted there starts writable.
RUN mkdir -p /out/data && chown 65532:65532 /out/data

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/
COPY --from=build /picbot /picbot
COPY --from=build --chown=65532:65532 /out/data /data
COPY deploy/docker.yaml /etc/picbot/config.yaml
# The store and images live in /data; one container per volume (bbolt locks the file).
ENV PICBOT_DATA_DIR=/data
VOLUME /data
WORKDIR /data
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/picbot"]
CMD ["-config", "/etc/picbot/config.yaml"]
