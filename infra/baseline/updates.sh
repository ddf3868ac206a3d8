#!/usr/bin/env bash
# What the OS update is about to change, recorded BEFORE the bake updates (Amazon Linux 2023, dnf4).
#
# It runs, against the latest release:
#   dnf -q --releasever=latest updateinfo list --updates             advisory, severity, package
#   dnf -q --releasever=latest updateinfo list --updates --with-cve  CVE, severity, package
#   dnf -q --releasever=latest check-update                          the packages (exit 100: some)
#   uname -r                                                         the running kernel
# With GOLDEN_AMI_UPDATES_FROM=DIR it reads those outputs from DIR/updateinfo.txt,
# updateinfo-cve.txt, check-update.txt, check-update.rc (the exit code) and uname-r.txt instead
# (the tests and the local stand-in of AWS run it that way). It changes nothing: it writes only
# to stdout, stderr and a temporary directory it removes. No python on purpose: it runs before
# anything is installed. awk, sed and sort do the work.
#
# Output: the FIRST LINE is a compact JSON summary, keys in a fixed order, at most 1,800 bytes:
#   {"upToDate":false,"packages":12,"advisories":3,"severities":{"Critical":1,"Important":2,
#    "Medium":0,"Low":0,"Bugfix":0,"Enhancement":0},"cves":7,"kernelBefore":"...",
#    "kernelAfter":"...","advisoryIds":[...],"truncated":false}
# (the bake document's branch tests that it starts with {"upToDate":true when nothing is
# pending; advisory ids are dropped from the end, and truncated is true, past 1,800 bytes), then
# "--- full report ---" and the raw listings. Exit 0 whether or not updates are pending;
# non-zero, with the reason on stderr, when dnf fails.
set -euo pipefail
export LC_ALL=C
PATH=$PATH:/usr/sbin:/usr/bin:/sbin:/bin

SUMMARY_MAX=1800
INPUTS="updateinfo.txt updateinfo-cve.txt check-update.txt check-update.rc uname-r.txt"

die() {
  printf 'updates.sh: %s\n' "$*" >&2
  exit 1
}

# The raw outputs into DIR: run dnf and uname, or read GOLDEN_AMI_UPDATES_FROM.
collect() { # DIR
  local dir=$1 name rc=0
  if [[ -n ${GOLDEN_AMI_UPDATES_FROM:-} ]]; then
    for name in $INPUTS; do
      [[ -f $GOLDEN_AMI_UPDATES_FROM/$name ]] || die "$GOLDEN_AMI_UPDATES_FROM/$name is missing"
      cat -- "$GOLDEN_AMI_UPDATES_FROM/$name" >"$dir/$name"
    done
    return 0
  fi
  dnf -q --releasever=latest updateinfo list --updates >"$dir/updateinfo.txt" ||
    die "dnf updateinfo list --updates failed (exit $?)"
  dnf -q --releasever=latest updateinfo list --updates --with-cve >"$dir/updateinfo-cve.txt" ||
    die "dnf updateinfo list --updates --with-cve failed (exit $?)"
  dnf -q --releasever=latest check-update >"$dir/check-update.txt" 2>"$dir/check-update.err" || rc=$?
  # dnf's error goes to stderr: keep it with the listing, for the message below.
  cat -- "$dir/check-update.err" >>"$dir/check-update.txt"
  printf '%s\n' "$rc" >"$dir/check-update.rc"
  uname -r >"$dir/uname-r.txt"
}

# "name.arch version repo" per package check-update lists. dnf wraps a name or version too long
# for its column onto the next line; an "Obsoleting Packages" section ends the list; notes such as
# "Security: kernel-... is an installed security update" are not packages.
packages() { # FILE
  awk '
    /^Obsoleting Packages/ { exit }
    /^[^ \t]/ {
      n = 0
      if ($1 !~ /^[^ ]+\.(x86_64|aarch64|noarch|i686|src)$/) next
    }
    NF > 0 {
      for (i = 1; i <= NF && n < 3; i++) field[++n] = $i
      if (n == 3) { print field[1], field[2], field[3]; n = 0 }
    }' "$1"
}

# The version check-update offers for the running kernel's package (kernel, or kernel6.12 and
# the like), as uname -r spells it: VERSION-RELEASE.ARCH, no epoch.
kernel_after() { # PACKAGES_FILE KERNEL_BEFORE
  awk -v before="$2" '
    BEGIN {
      arch = before; sub(/.*\./, "", arch)
      line = before; split(line, v, "."); series = v[1] "." v[2] "."
    }
    {
      name = $1; sub(/\.[^.]+$/, "", name)
      a = $1; sub(/.*\./, "", a)
      if (a != arch || name !~ /^kernel([0-9]+\.[0-9]+)?$/) next
      version = $2; sub(/^[0-9]+:/, "", version)
      if (index(version, series) == 1) { print version "." arch; found = 1; exit }
      if (name == "kernel" && fallback == "") fallback = version "." arch
    }
    END { if (!found && fallback != "") print fallback }' "$1"
}

# "id<TAB>Severity" per distinct advisory (dnf lists one line per package of an advisory).
advisories() { # FILE
  awk '
    NF >= 3 && $1 ~ /^[A-Za-z][A-Za-z0-9_.:-]*-[0-9][A-Za-z0-9_.:-]*$/ && !seen[$1]++ {
      kind = $2
      if (kind ~ /\/Sec\.$/) { sub(/\/Sec\.$/, "", kind); if (kind == "Moderate") kind = "Medium" }
      else if (kind == "bugfix") kind = "Bugfix"
      else if (kind == "enhancement" || kind == "newpackage") kind = "Enhancement"
      print $1 "\t" kind
    }' "$1" | sort
}

# The summary line: counts from the files in DIR; advisory ids while the line stays short enough.
summary() { # DIR
  local dir=$1 rc packages_n kernel_before kernel_after
  rc=$(sed -n '1{s/[[:space:]]//g;p;}' "$dir/check-update.rc")
  case $rc in
    0 | 100) ;;
    *) die "dnf check-update failed (exit ${rc:-unknown}): $(sed -n '/[^[:space:]]/{p;q;}' "$dir/check-update.txt")" ;;
  esac
  kernel_before=$(sed -n '1{s/[[:space:]]//g;p;}' "$dir/uname-r.txt")
  [[ $kernel_before =~ ^[A-Za-z0-9._+-]+$ ]] || die "uname -r gave '$kernel_before'"
  packages "$dir/check-update.txt" >"$dir/packages"
  packages_n=$(awk 'END { print NR }' "$dir/packages")
  if [[ $rc == 0 || $packages_n == 0 ]]; then
    # Nothing to install: advisories of packages not installed do not count.
    : >"$dir/packages"
    : >"$dir/advisories"
    : >"$dir/cves"
  else
    advisories "$dir/updateinfo.txt" >"$dir/advisories"
    awk '$1 ~ /^CVE-[0-9]+-[0-9]+$/ { print $1 }' "$dir/updateinfo-cve.txt" | sort -u >"$dir/cves"
  fi
  kernel_after=$(kernel_after "$dir/packages" "$kernel_before")
  awk -F'\t' -v max="$SUMMARY_MAX" -v before="$kernel_before" -v after="${kernel_after:-$kernel_before}" '
    FILENAME ~ /\/packages$/ { packages++; next }
    FILENAME ~ /\/cves$/ { cves++; next }
    { ids[++n] = $1; count[$2]++ }
    END {
      head = sprintf("{\"upToDate\":%s,\"packages\":%d,\"advisories\":%d,\"severities\":{", \
        packages ? "false" : "true", packages, n)
      split("Critical Important Medium Low Bugfix Enhancement", kinds, " ")
      for (k = 1; k <= 6; k++) head = head sprintf("%s\"%s\":%d", k > 1 ? "," : "", kinds[k], count[kinds[k]])
      head = head sprintf("},\"cves\":%d,\"kernelBefore\":\"%s\",\"kernelAfter\":\"%s\",\"advisoryIds\":[", \
        cves, before, after)
      tail = "],\"truncated\":false}"
      list = ""
      for (i = 1; i <= n; i++) {
        item = (i > 1 ? "," : "") "\"" ids[i] "\""
        # ("true" is shorter than "false": the line still fits once an id is dropped.)
        if (length(head list item tail) > max) { tail = "],\"truncated\":true}"; break }
        list = list item
      }
      print head list tail
    }' "$dir/packages" "$dir/cves" "$dir/advisories"
}

WORK_DIR=""
cleanup() { [[ -z $WORK_DIR ]] || rm -rf -- "$WORK_DIR"; }

main() {
  (($# == 0)) || {
    printf 'usage: updates.sh   (GOLDEN_AMI_UPDATES_FROM=DIR reads the dnf outputs from DIR)\n' >&2
    return 2
  }
  WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/golden-ami-updates.XXXXXX")
  trap cleanup EXIT
  collect "$WORK_DIR"
  summary "$WORK_DIR"
  printf -- '--- full report ---\n'
  printf '== dnf updateinfo list --updates\n'
  cat -- "$WORK_DIR/updateinfo.txt"
  printf '== dnf updateinfo list --updates --with-cve\n'
  cat -- "$WORK_DIR/updateinfo-cve.txt"
  printf '== dnf check-update (exit %s)\n' "$(sed -n '1{s/[[:space:]]//g;p;}' "$WORK_DIR/check-update.rc")"
  cat -- "$WORK_DIR/check-update.txt"
  printf '== uname -r\n'
  cat -- "$WORK_DIR/uname-r.txt"
}

main "$@"
