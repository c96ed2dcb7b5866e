# Latchkey container image.
#
# Stage "build" installs every dependency, compiles src/ to dist/ and then drops the
# dev dependencies; the final stage carries only package*.json, the production
# node_modules and dist/. No secret is set here: configuration comes from the
# environment at run time (see .env.example and docker-compose.yml). NODE_ENV is
# deliberately not set to production in the image, because production makes every
# secret mandatory and refuses the in-memory store; compose sets it.
#
# The image runs Node 24, an LTS release supported until April 2028 (Node 20 left maintenance
# in April 2026). The code itself uses nothing newer than Node 20 offers (engines: >=20, and
# @types/node 20), so the test suite keeps running on Node 20 machines.

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim
LABEL org.opencontainers.image.title="latchkey" \
      org.opencontainers.image.description="OAuth connector backend: authorization-code flow, encrypted credentials in Redis, race-free refresh, and a proxy for internal services." \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.base.name="docker.io/library/node:24-bookworm-slim"
WORKDIR /app
# Application files stay owned by root so the process (uid 1000) cannot rewrite its own code.
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Static browser assets served at run time from <app>/public (e.g. GET /connect.js reads
# dist/http/../../public/connect.js); tsc does not emit them.
COPY public ./public
ENV PORT=3000
# Latchkey listens on 127.0.0.1 unless HOST says otherwise; in a container it must listen on every
# interface of the container's own network namespace to be reachable through a published port.
ENV HOST=0.0.0.0
USER node
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1)).catch(()=>process.exit(1))"]
# Exec-form CMD: node is PID 1 and receives SIGTERM directly, then drains and exits 0.
STOPSIGNAL SIGTERM
CMD ["node", "dist/server.js"]
