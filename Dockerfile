# syntax=docker/dockerfile:1
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/tokend ./cmd/tokend

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tokend /tokend
# HTTP_ADDR and METRICS_ADDR; the image runs as the distroless nonroot user (65532).
EXPOSE 8080 9464
ENTRYPOINT ["/tokend"]
