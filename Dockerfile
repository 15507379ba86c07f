# A static picbot in an image with nothing else: CGO_ENABLED=0, time zones
# embedded (time/tzdata), CA certificates copied for the vendors' HTTPS.
#   docker build -t picbot .
#   docker run -v picbot-data:/data -e PICBOT_TELEGRAM_TOKEN=... -p 8080:8080 picbot -config /etc/picbot/config.yaml
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /picbot ./cmd/bot

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/
COPY --from=build /picbot /picbot
COPY config.example.yaml /etc/picbot/config.yaml
# The store and images live in /data; one container per volume (bbolt locks the file).
ENV PICBOT_DATA_DIR=/data
VOLUME /data
WORKDIR /data
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/picbot"]
