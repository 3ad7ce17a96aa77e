# syntax=docker/dockerfile:1
# The gateway in a container (docs/operations.md, "Container"). Checked by
# tests/unit/deploy/dockerfile.test.ts (no engine runs in CI; hadolint is not in Debian).
#
# Build stage: compile TypeScript and build the native modules (better-sqlite3, serialport) with the toolchain.
FROM node:20-bookworm-slim AS build
WORKDIR /app
# hadolint ignore=DL3008 -- the toolchain follows Debian 12's security updates; pinning it would freeze them
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY gateway ./gateway
COPY drivers ./drivers
COPY rules ./rules
COPY config ./config
COPY profiles ./profiles
# npm ci builds the native modules and runs `prepare`, which compiles to dist/.
RUN npm ci && npm prune --omit=dev && npm cache clean --force

# Runtime stage: only what runs, as a non-root user.
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Read at run time from the package root: the equipment templates and the demo's site file (config/),
# the device profiles, and the dashboard's files (gateway/package-root.ts, config/templates.ts).
COPY --from=build /app/config ./config
COPY --from=build /app/profiles ./profiles
COPY --from=build /app/gateway/http/dashboard ./gateway/http/dashboard
RUN mkdir -p /data && chown node:node /data
# State that must survive the container: the store, queues, spools, the audit journal, certificates.
ENV GATEWAY_DATA_DIR=/data
VOLUME ["/data"]
# The image sets no listening address: a site file's own mqtt.host and http.host decide. The demo's
# stay on the container's loopback (its operator token and its sensors' password are public), so
# nothing outside the container reaches them unless asked for, on the host's loopback only:
#   docker run -e HTTP_HOST=0.0.0.0 -p 127.0.0.1:8080:8080 <image>
# A real site listens on 0.0.0.0 with mqtt.users (or mqtt.tls) and HTTP tokens, and publishes the
# ports: anonymous MQTT clients get in from loopback only, which no client outside the container is.
# HTTP API and dashboard (http.port); MQTT, the embedded broker (mqtt.port; mqtt.tls.port when set: publish it too).
EXPOSE 8080 1883
USER node
# Healthy while /ready answers 200 (it needs no token): every part started and its peers reached.
# Another port: -e GATEWAY_HEALTH_URL=http://127.0.0.1:9090/ready. TLS: the certificate's host, mapped to
# loopback: -e GATEWAY_HEALTH_URL=https://gw.example:8443/ready --add-host gw.example:127.0.0.1 (docs/operations.md).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD ["node", "dist/gateway/healthcheck.js"]
ENTRYPOINT ["node", "--optimize-for-size", "dist/gateway/cli.js"]
CMD ["run", "-c", "config/demo.yaml"]
