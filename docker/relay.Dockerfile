# The relay image: `vault relay` and nothing else. It holds no key, no keyring and no config; it
# forwards the container credential route to the daemon's relay socket, bind-mounted at
# /run/vault/relay.sock (see docker/README.md and compose.relay.example.yml).
#
#   docker build -f docker/relay.Dockerfile -t vault-relay .      # from the repository root
#
# Stage 1 builds the CLI bundle (packages/cli/bundle: one file and a few chunks, our code only).
# `vault relay` loads only node built-ins and the bundle's own chunks, so the runtime stage needs
# no node_modules at all.
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY . .
# --ignore-scripts: keytar's native build (and libsecret) is for the keychain, which the relay never opens.
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && npx tsc --build \
 && node scripts/bundle-cli.mjs

# Stage 2: distroless Node (no shell, no package manager), non-root by default (uid 65532).
# Compose runs it as the daemon's uid instead (`user:`), the only user the 0600 socket lets in.
FROM gcr.io/distroless/nodejs20-debian12:nonroot
WORKDIR /vault
# The bundle reads the CLI's version from the package.json beside its directory.
COPY --from=build /src/packages/cli/package.json /vault/package.json
COPY --from=build /src/packages/cli/bundle /vault/bundle
USER 65532:65532
EXPOSE 80
ENTRYPOINT ["/nodejs/bin/node", "/vault/bundle/bin.js", "relay"]
CMD ["--socket", "/run/vault/relay.sock", "--listen", "169.254.170.2:80"]
