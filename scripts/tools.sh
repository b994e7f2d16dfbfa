# Sourced by scripts/test.sh: the real programs some tests drive, from Debian's packages when they are missing:
#   chromium   → the status page, rendered and read in a headless browser (test/integration/status-page.test.ts)
#   prometheus → every dashboard query evaluated against a real Prometheus scraping sluice (test/integration/dashboard.test.ts)
#   kubectl    → the Kubernetes manifests rendered by `kubectl kustomize` and validated (test/unit/deploy-manifests.test.ts)
# Without them (no apt-get, not root) those tests say they are skipped; nothing else depends on them.

tools_install() {
  local missing=()
  command -v chromium >/dev/null || missing+=(chromium)
  command -v prometheus >/dev/null || missing+=(prometheus)
  command -v kubectl >/dev/null || missing+=(kubectl)
  ((${#missing[@]} == 0)) && return 0
  if command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
    printf '==> installing %s (Debian packages)\n' "${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    printf '==> %s not installed (needs apt-get as root): the tests that drive them are skipped\n' "${missing[*]}" >&2
  fi
}
