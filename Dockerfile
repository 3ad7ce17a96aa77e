# syntax=docker/dockerfile:1
# Build stage: compile TypeScript and build native modules with the toolchain.
FROM node:20-bookworm-slim AS build
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY gateway ./gateway
COPY drivers ./drivers
COPY rules ./rules
COPY config ./config
COPY profiles ./profiles
# npm ci builds approved native modules and runs `prepare`, which compiles to dist/.
RUN npm ci && npm prune --omit=dev

# Runtime stage: only what runs, as a non-root user.
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/config ./config
COPY --from=build /app/profiles ./profiles
COPY --from=build /app/gateway/http/dashboard ./gateway/http/dashboard
RUN mkdir -p /data && chown node:node /data
USER node
# State that must survive the container: spool, outbox, certificates.
ENV GATEWAY_DATA_DIR=/data
# Inside a container the embedded broker must listen beyond loopback to be reachable at all. That
# does not open it: clients from outside the container are not loopback, so anonymous ones are
# refused (mqtt.anonymous: loopback), nobody but the gateway publishes under gw/<site>/, and only the
# users of the site file's mqtt.users get in. To add one:
#   docker run --rm <image> mqtt user new --name scada-1 --role reader
# prints a password (once) and the lines for mqtt.users; put them in your site file and run it:
#   docker run -p 1883:1883 -v /etc/gateway:/config:ro -v gw-data:/data <image> run -c /config/site.yaml
# The demo's site file has no users: from outside the container its broker lets nobody in.
ENV MQTT_HOST=0.0.0.0
VOLUME ["/data"]
# MQTT (embedded broker); MQTT over TLS when the site file sets mqtt.tls (publish its port too).
EXPOSE 1883
# Healthy while the process answers on its MQTT port.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD node -e "const s=require('net').connect(Number(process.env.MQTT_PORT||1883),'127.0.0.1');s.on('connect',()=>process.exit(0));s.on('error',()=>process.exit(1))"
ENTRYPOINT ["node", "--optimize-for-size", "dist/gateway/cli.js"]
CMD ["run", "-c", "config/demo.yaml"]
