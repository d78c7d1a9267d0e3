# syntax=docker/dockerfile:1
# One image for every role; the subcommand picks it:
#   docker run IMAGE serve --host 0.0.0.0     standalone gateway (default)
#   docker run IMAGE sidecar                  Envoy ext_proc server (injected by the webhook)
#   docker run IMAGE controller               Kubernetes controller and admission webhook
# Built and pushed for linux/amd64 and linux/arm64 by .github/workflows/release.yml on a v* tag;
# docs/kubernetes.md shows how to build it locally and load it into kind or minikube.

# The build stage runs on the builder's own platform: the output (JavaScript, no native addons) is
# the same for every target, so a multi-arch build compiles once instead of under emulation.
FROM --platform=$BUILDPLATFORM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# The image already has Node 24: skip install scripts (the node@24 dev dependency's download).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# Compile, then keep production dependencies only.
RUN npx tsc -p tsconfig.build.json \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
 && rm -rf node_modules/.cache

FROM node:24-slim
ENV NODE_ENV=production
# Freed large buffers (request bodies) go back to the system instead of staying in glibc's heap:
# a fixed mmap threshold turns off the allocator's dynamic one (see DEVELOPERS.md, Runtime flags).
ENV MALLOC_MMAP_THRESHOLD_=131072
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json tierflow.yaml ./
COPY bin ./bin
# Numeric non-root user and group, the chart's (sidecar.runAsUser, sidecar.sharedGroup, and the
# controller's securityContext), so runAsNonRoot can verify it and files it creates match the pod's.
USER 65532:65532
# The gateway's port (`serve`). The sidecar and the controller take their ports from arguments.
EXPOSE 8080
ENTRYPOINT ["node", "--max-semi-space-size=4", "--single-threaded-gc", "--expose-gc", "bin/tierflow.js"]
CMD ["serve", "--host", "0.0.0.0"]
