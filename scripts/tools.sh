# Sourced by scripts/test.sh: the real programs some tests drive, from Debian's packages when they are missing:
#   chromium   → the status page, rendered and read in a headless browser (test/integration/status-page.test.ts)
#   prometheus → every dashboard query evaluated against a real Prometheus scraping sluice (test/integration/dashboard.test.ts)
#   kubectl    → the Kubernetes manifests rendered by `kubectl kustomize` and validated (test/unit/deploy-manifests.test.ts)
#   curl       → scripts/registry/registry.sh asks the schema registry whether it answers (test/integration/schema-registry.test.ts)
# Without them (no apt-get, not root) those tests say they are skipped; nothing else depends on them.

tools_install() {
  local missing=()
  command -v chromium >/dev/null || missing+=(chromium)
  command -v prometheus >/dev/null || missing+=(prometheus)
  command -v curl >/dev/null || missing+=(curl)
  local can_install=false
  command -v apt-get >/dev/null && [[ $(id -u) == 0 ]] && can_install=true
  if ((${#missing[@]} > 0)); then
    if [[ $can_install == true ]]; then
      printf '==> installing %s (Debian packages)\n' "${missing[*]}" >&2
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
      printf '==> %s not installed (needs apt-get as root): the tests that drive them are skipped\n' "${missing[*]}" >&2
    fi
  fi
  # kubectl is not in every Debian release's main archive (bookworm has none): where the package exists it is
  # installed, elsewhere the manifest test says it is skipped. Never a reason to stop the run.
  if ! command -v kubectl >/dev/null; then
    if [[ $can_install == true ]] && apt-cache show kubectl >/dev/null 2>&1; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kubectl >/dev/null ||
        printf '==> installing kubectl failed: the manifest test is skipped\n' >&2
    else
      printf '==> kubectl not available from this machine'"'"'s packages: the manifest test is skipped\n' >&2
    fi
  fi
}
