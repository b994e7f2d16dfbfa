# sluice's image: built with the dev dependencies, run with the production ones only, as a numeric non-root user
# (runAsNonRoot can only verify a numeric one), with node itself as PID 1's program so that SIGTERM reaches sluice.
# Nothing is written to the root filesystem: it runs with readOnlyRootFilesystem (an emptyDir on /tmp is enough).
#   docker build -t sluice:dev .
#   docker run --rm -e KAFKA_BROKERS=… -e DATABASE_URL=… -e SLUICE_TOPICS=orders -p 8080:8080 sluice:dev

FROM node:20.20.2-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM node:20.20.2-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
USER 1000:1000
# The HTTP port: /healthz, /readyz, /status, /metrics and the status page (SLUICE_HTTP_PORT, 8080 by default).
EXPOSE 8080
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["run"]
