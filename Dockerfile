# syntax=docker/dockerfile:1
# One image for every role; the subcommand picks it:
#   docker run IMAGE serve --host 0.0.0.0     standalone gateway (default)
#   docker run IMAGE sidecar                  Envoy ext_proc server
#   docker run IMAGE controller               Kubernetes controller and admission webhook

FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# The image already has Node 24: skip install scripts (the node@24 dev dependency's download).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
 && rm -rf node_modules/.cache

FROM node:24-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json tierflow.yaml ./
COPY bin ./bin
# Numeric non-root user (the image's "node" user), so Kubernetes runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 8080 9901
ENTRYPOINT ["node", "--max-semi-space-size=4", "--single-threaded-gc", "bin/tierflow.js"]
CMD ["serve", "--host", "0.0.0.0"]
