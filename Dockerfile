# syntax=docker/dockerfile:1
# Beacon image: multi-stage (the build stage compiles TypeScript, the runtime stage holds dist/ and production
# dependencies only), runs as the unprivileged `node` user, and loads the OpenTelemetry bootstrap with `node --import`
# before the app so every instrumentation is in place when the first module is required.

FROM node:20.19-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY otel ./otel
COPY src ./src
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM node:20.19-bookworm-slim AS runtime
ENV NODE_ENV=production \
    PORT=6001 \
    METRICS_PORT=9464 \
    OTEL_SERVICE_NAME=beacon
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./package.json
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
USER node
EXPOSE 6001 9464
# Liveness only: /readyz turns 503 while draining, which must not make Docker restart a node that is shutting down cleanly.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||6001)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# SIGTERM starts the graceful drain (README, "Health and shutdown"); compose and Kubernetes give it stop_grace_period / terminationGracePeriodSeconds.
STOPSIGNAL SIGTERM
# The node options of `npm start` (docs/scaling.md, "The Node process"; test/start-command.test.ts keeps them the same).
CMD ["node", "--max-semi-space-size=32", "--enable-source-maps", "--import", "./dist/otel/register.js", "dist/src/main.js"]
