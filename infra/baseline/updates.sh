#!/usr/bin/env bash
# What the OS update is about to change, recorded BEFORE the bake updates (Amazon Linux 2023, dnf).
#
# It runs, against the latest release:
#   dnf -q --releasever=latest updateinfo list --updates             advisory, severity, package
#   dnf -q --releasever=latest updateinfo list --updates --with-cve  CVE, severity, package
#   dnf -q --releasever=latest check-update                          the packages (exit 100: some)
#   uname -r                                                         the running kernel
# With GOLDEN_AMI_UPDATES_FROM=DIR it reads those outputs from DIR/updateinfo.txt,
# updateinfo-cve.txt, check-update.txt, check-update.rc and uname-r.txt instead (the tests and the
# local stand-in of AWS run it that way). It changes nothing on the system either way.
#
# Output: the FIRST LINE is a compact JSON summary, keys in a fixed order, at most 1,800 bytes:
#   {"upToDate":false,"packages":12,"advisories":3,"severities":{"Critical":1,"Important":2,
#    "Medium":0,"Low":0,"Bugfix":0,"Enhancement":0},"cves":7,"kernelBefore":"...",
#    "kernelAfter":"...","advisoryIds":[...],"truncated":false}
# (the bake document's branch tests that it starts with {"upToDate":true when nothing is
# pending), then "--- full report ---" and the raw listings. Exit 0 whether or not updates are
# pending; non-zero, with the reason on stderr, when dnf fails.
set -euo pipefail
export LC_ALL=C

SUMMARY_MAX=1800

collect() { # DIR: the raw outputs, from dnf or from GOLDEN_AMI_UPDATES_FROM
  local dir=$1 rc=0
  if [[ -n ${GOLDEN_AMI_UPDATES_FROM:-} ]]; then
    local name
    for name in updateinfo.txt updateinfo-cve.txt check-update.txt check-update.rc uname-r.txt; do
      if [[ ! -f $GOLDEN_AMI_UPDATES_FROM/$name ]]; then
        printf 'updates.sh: %s/%s is missing\n' "$GOLDEN_AMI_UPDATES_FROM" "$name" >&2
        return 1
      fi
      cp -- "$GOLDEN_AMI_UPDATES_FROM/$name" "$dir/$name"
    done
    return 0
  fi
  dnf -q --releasever=latest updateinfo list --updates >"$dir/updateinfo.txt"
  dnf -q --releasever=latest updateinfo list --updates --with-cve >"$dir/updateinfo-cve.txt"
  dnf -q --releasever=latest check-update >"$dir/check-update.txt" || rc=$?
  printf '%s\n' "$rc" >"$dir/check-update.rc"
  uname -r >"$dir/uname-r.txt"
}

# The package lines of check-update: "name.arch  version  repo", before any Obsoleting section.
packages() {
  awk '/^Obsoleting Packages/ { exit } NF == 3 && $1 ~ /\./ { print }' "$1"
}

# One "id<TAB>Severity" per advisory (an advisory lists one line per package).
advisories() {
  awk '
    NF >= 3 && $1 ~ /^[A-Z]/ {
      kind = $2
      if (kind ~ /\/Sec\.$/) { sub(/\/Sec\.$/, "", kind) }
      else if (kind == "bugfix") { kind = "Bugfix" }
      else if (kind == "enhancement" || kind == "newpackage") { kind = "Enhancement" }
      else { next }
      print $1 "\t" kind
    }' "$1" | sort -u
}

count_severity() { # FILE SEVERITY
  awk -F'\t' -v s="$2" '$2 == s { n++ } END { print n + 0 }' "$1"
}

json_ids() { # the ids, one per line on stdin -> "a","b"
  awk 'BEGIN { ORS = "" } { if (NR > 1) print ","; printf "\"%s\"", $0 }'
}

summary() { # DIR
  local dir=$1 rc kernel_before kernel_after packages_n advisories_n cves_n ids truncated=false
  rc=$(tr -d '[:space:]' <"$dir/check-update.rc")
  case $rc in
    0 | 100) ;;
    *)
      printf 'updates.sh: dnf check-update failed (exit %s): %s\n' "$rc" \
        "$(tr '\n' ' ' <"$dir/check-update.txt")" >&2
      return 1
      ;;
  esac
  kernel_before=$(tr -d '[:space:]' <"$dir/uname-r.txt")
  packages "$dir/check-update.txt" >"$dir/packages"
  kernel_after=$(awk '$1 ~ /^kernel\./ { split($1, p, "."); print $2 "." p[2]; exit }' "$dir/packages")
  kernel_after=${kernel_after:-$kernel_before}
  packages_n=$(wc -l <"$dir/packages" | tr -d ' ')
  if [[ $rc == 0 || $packages_n == 0 ]]; then
    : >"$dir/advisories"
    packages_n=0
  else
    advisories "$dir/updateinfo.txt" >"$dir/advisories"
  fi
  advisories_n=$(wc -l <"$dir/advisories" | tr -d ' ')
  cves_n=$(awk '$1 ~ /^CVE-/ { print $1 }' "$dir/updateinfo-cve.txt" | sort -u | wc -l | tr -d ' ')
  ((packages_n > 0)) || cves_n=0
  cut -f1 "$dir/advisories" >"$dir/ids"
  local head line
  head=$(printf '{"upToDate":%s,"packages":%d,"advisories":%d,"severities":{"Critical":%d,"Important":%d,"Medium":%d,"Low":%d,"Bugfix":%d,"Enhancement":%d},"cves":%d,"kernelBefore":"%s","kernelAfter":"%s","advisoryIds":[' \
    "$([[ $packages_n == 0 ]] && printf true || printf false)" "$packages_n" "$advisories_n" \
    "$(count_severity "$dir/advisories" Critical)" "$(count_severity "$dir/advisories" Important)" \
    "$(count_severity "$dir/advisories" Medium)" "$(count_severity "$dir/advisories" Low)" \
    "$(count_severity "$dir/advisories" Bugfix)" "$(count_severity "$dir/advisories" Enhancement)" \
    "$cves_n" "$kernel_before" "$kernel_after")
  ids=$(json_ids <"$dir/ids")
  line="$head$ids],\"truncated\":false}"
  # Too long for the automation's output field: drop ids from the end, keep the counts.
  while ((${#line} > SUMMARY_MAX)); do
    sed -i '$d' "$dir/ids"
    truncated=true
    ids=$(json_ids <"$dir/ids")
    line="$head$ids],\"truncated\":$truncated}"
  done
  printf '%s\n' "$line"
}

WORK_DIR=""
cleanup() { [[ -z $WORK_DIR ]] || rm -rf -- "$WORK_DIR"; }

main() {
  local dir status=0
  WORK_DIR=$(mktemp -d)
  dir=$WORK_DIR
  trap cleanup EXIT
  collect "$dir"
  summary "$dir" || status=$?
  if ((status != 0)); then
    return "$status"
  fi
  printf -- '--- full report ---\n'
  printf '== dnf updateinfo list --updates\n'
  cat -- "$dir/updateinfo.txt"
  printf '== dnf updateinfo list --updates --with-cve\n'
  cat -- "$dir/updateinfo-cve.txt"
  printf '== dnf check-update (exit %s)\n' "$(tr -d '[:space:]' <"$dir/check-update.rc")"
  cat -- "$dir/check-update.txt"
  printf '== uname -r\n'
  cat -- "$dir/uname-r.txt"
}

main "$@"
