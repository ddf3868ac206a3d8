#!/usr/bin/env bash
# The golden AMI hardening baseline, as a check: the specification that apply.sh implements.
#
#   check.sh [ROOT]   check the system under ROOT (default /); every file control reads under
#                     ROOT, so tests point it at fixture trees. Runtime-only controls need the
#                     running system and print SKIP when ROOT is not /.
#   check.sh --list   one line per control: id <TAB> how apply.sh applies it <TAB> how it is checked
#
# Output: one line per control, "PASS|FAIL|SKIP <control> <evidence>", then
# "SUMMARY pass=N fail=N skip=N". Every line stays under 90 characters and the whole output
# under 2,400 bytes: it travels back through a 2,500-character SSM output field.
# Exit status: 0 when no control fails, 1 when any does, 2 on a usage error.
set -euo pipefail
export LC_ALL=C

ROOT=/
PASSED=0
FAILED=0
SKIPPED=0
LINE_MAX=88

# id|applied by apply.sh|checked by this script (the README's baseline table comes from here)
CONTROLS=(
  "selinux-config|SELINUX=enforcing, SELINUXTYPE=targeted in /etc/selinux/config|reads /etc/selinux/config"
  "selinux-runtime|setenforce 1 when the system is permissive|getenforce is Enforcing"
  "ssh-password-auth|PasswordAuthentication no, KbdInteractiveAuthentication no (sshd_config.d/00-golden-ami.conf)|effective values, drop-ins read first"
  "ssh-root-login|PermitRootLogin no (00-golden-ami.conf)|effective value"
  "ssh-max-auth-tries|MaxAuthTries 4 (00-golden-ami.conf)|effective value is 1-4"
  "ssh-client-alive|ClientAliveInterval 300, ClientAliveCountMax 3 (00-golden-ami.conf)|interval 1-300 s, count at most 3"
  "ssh-ciphers|Ciphers: chacha20-poly1305, AES-GCM, AES-CTR only (00-golden-ami.conf)|every effective cipher is in that list"
  "ssh-macs|MACs: SHA-2 and UMAC-128 encrypt-then-MAC only (00-golden-ami.conf)|every effective MAC is in that list"
  "ssh-kex|KexAlgorithms: sntrup761, curve25519, ECDH, DH group-exchange/16/18 (00-golden-ami.conf)|every effective algorithm is in that list"
  "ssh-effective-runtime|sshd -t validates the drop-in|sshd -T: no password auth, no root login"
  "auditd-enabled|dnf install audit; systemctl enable auditd|multi-user.target wants auditd.service"
  "auditd-active|augenrules --load|systemctl is-active auditd"
  "auditd-rules|/etc/audit/rules.d/50-golden-ami.rules|keys identity, sudoers, logins, time-change, modules, privileged"
  "aide-installed|dnf install aide|/usr/sbin/aide and /etc/aide.conf exist"
  "aide-database|aide --init LAST, after the update|aide.db.gz newer than the rpm database"
  "sysctl-redirects|no ICMP redirects accepted or sent (/etc/sysctl.d/90-golden-ami.conf)|effective sysctl.d values"
  "sysctl-source-route|no source-routed packets (90-golden-ami.conf)|effective sysctl.d values"
  "sysctl-rp-filter|strict reverse-path filtering (90-golden-ami.conf)|effective sysctl.d values"
  "sysctl-aslr|kernel.randomize_va_space=2 (90-golden-ami.conf)|effective sysctl.d value"
  "sysctl-suid-dumpable|fs.suid_dumpable=0 (90-golden-ami.conf)|effective sysctl.d value"
  "sysctl-network|SYN cookies, ignore broadcast/bogus ICMP, log martians (90-golden-ami.conf)|effective sysctl.d values"
  "sysctl-runtime|sysctl --system|live values equal the sysctl.d ones"
  "services-disabled|systemctl disable --now rpcbind, avahi, cups, nfs-server, postfix, telnet, tftp, vsftpd|none of them is enabled"
  "cloudwatch-agent|dnf install amazon-cloudwatch-agent; systemctl enable|agent binary present and enabled"
  "time-sync|chrony server 169.254.169.123 prefer (Amazon Time Sync); chronyd enabled|server line in chrony's config, chronyd enabled"
  "chronyd-active|systemctl enable --now chronyd|systemctl is-active chronyd"
)

ALLOWED_CIPHERS="chacha20-poly1305@openssh.com aes256-gcm@openssh.com aes128-gcm@openssh.com aes256-ctr aes192-ctr aes128-ctr"
ALLOWED_MACS="hmac-sha2-512-etm@openssh.com hmac-sha2-256-etm@openssh.com umac-128-etm@openssh.com"
ALLOWED_KEX="sntrup761x25519-sha512@openssh.com curve25519-sha256 curve25519-sha256@libssh.org ecdh-sha2-nistp521 ecdh-sha2-nistp384 ecdh-sha2-nistp256 diffie-hellman-group-exchange-sha256 diffie-hellman-group16-sha512 diffie-hellman-group18-sha512"
UNNEEDED_UNITS="rpcbind.service rpcbind.socket avahi-daemon.service cups.service nfs-server.service postfix.service telnet.socket tftp.socket vsftpd.service"
SYSCTL_REDIRECTS="net.ipv4.conf.all.accept_redirects=0 net.ipv4.conf.default.accept_redirects=0 net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.default.send_redirects=0 net.ipv4.conf.all.secure_redirects=0 net.ipv4.conf.default.secure_redirects=0 net.ipv6.conf.all.accept_redirects=0 net.ipv6.conf.default.accept_redirects=0"
SYSCTL_SOURCE_ROUTE="net.ipv4.conf.all.accept_source_route=0 net.ipv4.conf.default.accept_source_route=0 net.ipv6.conf.all.accept_source_route=0 net.ipv6.conf.default.accept_source_route=0"
SYSCTL_RP_FILTER="net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.default.rp_filter=1"
SYSCTL_ASLR="kernel.randomize_va_space=2"
SYSCTL_SUID_DUMPABLE="fs.suid_dumpable=0"
SYSCTL_NETWORK="net.ipv4.tcp_syncookies=1 net.ipv4.icmp_echo_ignore_broadcasts=1 net.ipv4.icmp_ignore_bogus_error_responses=1 net.ipv4.conf.all.log_martians=1 net.ipv4.conf.default.log_martians=1"

# ---- output ---------------------------------------------------------------------------------

report() { # VERDICT CONTROL EVIDENCE...
  local verdict=$1 control=$2
  shift 2
  local line="$verdict $control $*"
  if ((${#line} > LINE_MAX)); then
    line="${line:0:LINE_MAX-3}..."
  fi
  printf '%s\n' "$line"
  case $verdict in
    PASS) PASSED=$((PASSED + 1)) ;;
    FAIL) FAILED=$((FAILED + 1)) ;;
    SKIP) SKIPPED=$((SKIPPED + 1)) ;;
  esac
}

pass() { report PASS "$@"; }
fail() { report FAIL "$@"; }
skip() { report SKIP "$@"; }

on_root() { [[ $ROOT == / ]]; }

# Runtime controls: run $2... unless ROOT is not /.
runtime() { # CONTROL FUNCTION
  if on_root; then
    "$2"
  else
    skip "$1" "runtime check; root is $ROOT, not /"
  fi
}

join() { # ITEM... -> "a, b, c"
  local out
  printf -v out '%s, ' "$@"
  printf '%s' "${out%, }"
}

path() { printf '%s%s' "${ROOT%/}" "$1"; }

# ---- readers --------------------------------------------------------------------------------

# The lines sshd reads, in order: FILE with its Include lines expanded in place, recursively
# (AL2023's sshd_config includes sshd_config.d/*.conf at its top, so drop-ins come first, in
# lexical order; 50-redhat.conf includes the crypto policy's file).
sshd_expand() { # FILE DEPTH
  local file=$1 depth=$2 line pattern included
  while IFS= read -r line || [[ -n $line ]]; do
    if [[ ${line,,} =~ ^[[:space:]]*include[[:space:]]+(.+)$ ]] && ((depth < 4)); then
      for pattern in ${BASH_REMATCH[1]}; do
        [[ $pattern == /* ]] || pattern=/etc/ssh/$pattern
        # The pattern is a glob on purpose: it expands in lexical order, like sshd's.
        # shellcheck disable=SC2086
        for included in $(path "$pattern"); do
          [[ -f $included ]] && sshd_expand "$included" $((depth + 1))
        done
      done
    else
      printf '%s\n' "$line"
    fi
  done <"$file"
}

sshd_lines() {
  local config
  config=$(path /etc/ssh/sshd_config)
  [[ -f $config ]] && sshd_expand "$config" 0
  return 0
}

# The value sshd takes for KEYWORD: the first one it reads, outside Match blocks.
sshd_value() {
  sshd_lines | awk -v key="${1,,}" '
    tolower($1) == "match" { stop = 1 }
    !stop && !found && tolower($1) == key { $1 = ""; sub(/^[ \t]+/, ""); print; found = 1 }'
}

# The sysctl.d files in systemd-sysctl's order: by file name across the directories (a file in
# /etc replaces one of the same name in /run or /usr/lib), then /etc/sysctl.conf.
sysctl_files() {
  local -A chosen=()
  local dir file
  for dir in /usr/lib/sysctl.d /run/sysctl.d /etc/sysctl.d; do
    for file in "$(path "$dir")"/*.conf; do
      [[ -e $file ]] && chosen[${file##*/}]=$file
    done
  done
  if ((${#chosen[@]})); then
    printf '%s\n' "${!chosen[@]}" | sort | while IFS= read -r file; do
      printf '%s\n' "${chosen[$file]}"
    done
  fi
  if [[ -f $(path /etc/sysctl.conf) ]]; then
    path /etc/sysctl.conf
    printf '\n'
  fi
}

# The effective value of each sysctl key (later settings override earlier ones).
sysctl_value() { # KEY
  local files=()
  mapfile -t files < <(sysctl_files)
  ((${#files[@]})) || return 0
  awk -v key="$1" '
    /^[ \t]*[#;]/ || !/=/ { next }
    {
      k = $0; sub(/=.*/, "", k); sub(/^[ \t]*-/, "", k); gsub(/[ \t]/, "", k); gsub(/\//, ".", k)
      v = $0; sub(/^[^=]*=/, "", v); gsub(/^[ \t]+|[ \t]+$/, "", v)
      if (k == key) value = v
    }
    END { print value }' "${files[@]}"
}

enabled_unit() { # UNIT -> true when some target wants it
  local link
  for link in "$(path /etc/systemd/system)"/*.wants/"$1"; do
    [[ -e $link || -L $link ]] && return 0
  done
  return 1
}

mtime() { date -u -r "$1" +%Y-%m-%dT%H:%M 2>/dev/null || printf 'unknown'; }

# ---- controls -------------------------------------------------------------------------------

check_selinux_config() {
  local file mode type
  file=$(path /etc/selinux/config)
  if [[ ! -f $file ]]; then
    fail selinux-config "/etc/selinux/config is missing"
    return
  fi
  mode=$(awk -F= '$1 == "SELINUX" { v = $2 } END { print v }' "$file")
  type=$(awk -F= '$1 == "SELINUXTYPE" { v = $2 } END { print v }' "$file")
  if [[ $mode == enforcing && $type == targeted ]]; then
    pass selinux-config "SELINUX=enforcing SELINUXTYPE=targeted"
  else
    fail selinux-config "SELINUX=${mode:-unset} SELINUXTYPE=${type:-unset} in /etc/selinux/config"
  fi
}

check_selinux_runtime() {
  local mode
  mode=$(getenforce 2>/dev/null || printf 'unknown')
  if [[ $mode == Enforcing ]]; then
    pass selinux-runtime "getenforce: Enforcing"
  else
    fail selinux-runtime "getenforce: $mode"
  fi
}

check_ssh_password_auth() {
  local password kbd
  password=$(sshd_value PasswordAuthentication)
  kbd=$(sshd_value KbdInteractiveAuthentication)
  if [[ ${password,,} == no && ${kbd,,} == no ]]; then
    pass ssh-password-auth "PasswordAuthentication no, KbdInteractiveAuthentication no"
  else
    fail ssh-password-auth "PasswordAuthentication ${password:-unset (yes)}, KbdInteractiveAuthentication ${kbd:-unset (yes)}"
  fi
}

check_ssh_root_login() {
  local value
  value=$(sshd_value PermitRootLogin)
  if [[ ${value,,} == no ]]; then
    pass ssh-root-login "PermitRootLogin no"
  else
    fail ssh-root-login "PermitRootLogin ${value:-unset (prohibit-password)}"
  fi
}

check_ssh_max_auth_tries() {
  local value
  value=$(sshd_value MaxAuthTries)
  if [[ $value =~ ^[0-9]+$ ]] && ((value >= 1 && value <= 4)); then
    pass ssh-max-auth-tries "MaxAuthTries $value"
  else
    fail ssh-max-auth-tries "MaxAuthTries ${value:-unset (6)}, want 1-4"
  fi
}

check_ssh_client_alive() {
  local interval count
  interval=$(sshd_value ClientAliveInterval)
  count=$(sshd_value ClientAliveCountMax)
  if [[ $interval =~ ^[0-9]+$ && $count =~ ^[0-9]+$ ]] &&
    ((interval >= 1 && interval <= 300 && count <= 3)); then
    pass ssh-client-alive "ClientAliveInterval $interval, ClientAliveCountMax $count"
  else
    fail ssh-client-alive "ClientAliveInterval ${interval:-unset (0)}, ClientAliveCountMax ${count:-unset (3)}"
  fi
}

# Every item of KEYWORD's effective value is in ALLOWED; modifiers (+ - ^) keep weak defaults.
check_ssh_list() { # CONTROL KEYWORD ALLOWED
  local control=$1 keyword=$2 allowed=$3 value item bad=()
  value=$(sshd_value "$keyword")
  if [[ -z $value ]]; then
    fail "$control" "$keyword unset: the crypto policy's defaults apply"
    return
  fi
  if [[ $value == [+^-]* ]]; then
    fail "$control" "$keyword $value modifies the defaults instead of listing"
    return
  fi
  IFS=, read -ra items <<<"$value"
  for item in "${items[@]}"; do
    [[ " $allowed " == *" $item "* ]] || bad+=("$item")
  done
  if ((${#bad[@]})); then
    fail "$control" "$keyword allows $(join "${bad[@]}")"
  else
    pass "$control" "$keyword $value"
  fi
}

check_ssh_effective_runtime() {
  local effective
  if ! effective=$(sshd -T 2>&1); then
    fail ssh-effective-runtime "sshd -T failed: ${effective%%$'\n'*}"
    return
  fi
  if grep -qx 'passwordauthentication no' <<<"$effective" &&
    grep -qx 'permitrootlogin no' <<<"$effective"; then
    pass ssh-effective-runtime "sshd -T: passwordauthentication no, permitrootlogin no"
  else
    fail ssh-effective-runtime "sshd -T allows passwords or root login"
  fi
}

check_auditd_enabled() {
  if enabled_unit auditd.service; then
    pass auditd-enabled "auditd.service enabled"
  else
    fail auditd-enabled "auditd.service is not enabled"
  fi
}

check_auditd_active() {
  local state
  state=$(systemctl is-active auditd 2>/dev/null || true)
  if [[ $state == active ]]; then
    pass auditd-active "auditd active"
  else
    fail auditd-active "auditd is ${state:-unknown}"
  fi
}

check_auditd_rules() {
  local file key missing=()
  file=$(path /etc/audit/rules.d/50-golden-ami.rules)
  if [[ ! -f $file ]]; then
    fail auditd-rules "/etc/audit/rules.d/50-golden-ami.rules is missing"
    return
  fi
  for key in identity sudoers logins time-change modules privileged; do
    grep -Eq -- "(-k[[:space:]]+|-F[[:space:]]+key=)$key([[:space:]]|$)" "$file" || missing+=("$key")
  done
  for key in /etc/passwd /etc/group /etc/shadow /etc/gshadow /etc/security/opasswd; do
    grep -Eq -- "-w[[:space:]]+${key}[[:space:]].*identity" "$file" || missing+=("watch $key")
  done
  if ((${#missing[@]})); then
    fail auditd-rules "missing: $(join "${missing[@]}")"
  else
    pass auditd-rules "50-golden-ami.rules has every key"
  fi
}

check_aide_installed() {
  if [[ -x $(path /usr/sbin/aide) && -f $(path /etc/aide.conf) ]]; then
    pass aide-installed "/usr/sbin/aide, /etc/aide.conf"
  else
    fail aide-installed "aide is not installed (/usr/sbin/aide or /etc/aide.conf missing)"
  fi
}

check_aide_database() {
  local db rpmdb
  db=$(path /var/lib/aide/aide.db.gz)
  rpmdb=$(path /var/lib/rpm/rpmdb.sqlite)
  if [[ ! -f $db ]]; then
    fail aide-database "no database: /var/lib/aide/aide.db.gz is missing"
  elif [[ ! -f $rpmdb ]]; then
    fail aide-database "no package database /var/lib/rpm/rpmdb.sqlite to compare with"
  elif [[ $db -nt $rpmdb ]]; then
    pass aide-database "aide.db.gz $(mtime "$db") after rpmdb $(mtime "$rpmdb")"
  else
    fail aide-database "aide.db.gz $(mtime "$db") predates rpmdb $(mtime "$rpmdb")"
  fi
}

check_sysctl() { # CONTROL KEY=VALUE...
  local control=$1 pair key want got bad=()
  shift
  for pair in "$@"; do
    key=${pair%%=*}
    want=${pair#*=}
    got=$(sysctl_value "$key")
    [[ $got == "$want" ]] || bad+=("${key#net.}=${got:-unset}")
  done
  if ((${#bad[@]})); then
    fail "$control" "$(join "${bad[@]}")"
  else
    if (($# == 1)); then
      pass "$control" "$1"
    else
      pass "$control" "all $# settings as required"
    fi
  fi
}

check_sysctl_runtime() {
  local pair key want got bad=()
  # shellcheck disable=SC2086 # the lists are space-separated on purpose
  for pair in $SYSCTL_REDIRECTS $SYSCTL_SOURCE_ROUTE $SYSCTL_RP_FILTER $SYSCTL_ASLR \
    $SYSCTL_SUID_DUMPABLE $SYSCTL_NETWORK; do
    key=${pair%%=*}
    want=${pair#*=}
    got=$(sysctl -n "$key" 2>/dev/null || printf 'unreadable')
    [[ $got == "$want" ]] || bad+=("${key#net.}=$got")
  done
  if ((${#bad[@]})); then
    fail sysctl-runtime "$(join "${bad[@]}")"
  else
    pass sysctl-runtime "live values as required"
  fi
}

check_services_disabled() {
  local unit enabled=()
  for unit in $UNNEEDED_UNITS; do
    enabled_unit "$unit" && enabled+=("$unit")
  done
  if ((${#enabled[@]})); then
    fail services-disabled "enabled: $(join "${enabled[@]}")"
  else
    pass services-disabled "none of the unneeded services is enabled"
  fi
}

check_cloudwatch_agent() {
  local binary
  binary=$(path /opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent)
  if [[ ! -e $binary ]]; then
    fail cloudwatch-agent "amazon-cloudwatch-agent is not installed"
  elif ! enabled_unit amazon-cloudwatch-agent.service; then
    fail cloudwatch-agent "amazon-cloudwatch-agent.service is not enabled"
  else
    pass cloudwatch-agent "installed and enabled"
  fi
}

# The files chrony reads its sources from: chrony.conf and its sourcedir/confdir directories.
chrony_files() {
  local conf dir
  conf=$(path /etc/chrony.conf)
  [[ -f $conf ]] || return 0
  printf '%s\n' "$conf"
  awk '$1 == "sourcedir" || $1 == "confdir" { for (i = 2; i <= NF; i++) print $1, $i }' "$conf" |
    while read -r kind dir; do
      if [[ $kind == sourcedir ]]; then
        ls -1 "$(path "$dir")"/*.sources 2>/dev/null || true
      else
        ls -1 "$(path "$dir")"/*.conf 2>/dev/null || true
      fi
    done
}

check_time_sync() {
  local files=() line
  mapfile -t files < <(chrony_files)
  if ((${#files[@]} == 0)); then
    fail time-sync "/etc/chrony.conf is missing"
    return
  fi
  line=$(awk '$1 == "server" && $2 == "169.254.169.123" && / prefer/ { print; exit }' "${files[@]}")
  if [[ -z $line ]]; then
    fail time-sync "no 'server 169.254.169.123 prefer' line in chrony's config"
  elif ! enabled_unit chronyd.service; then
    fail time-sync "chronyd.service is not enabled"
  else
    pass time-sync "$line"
  fi
}

check_chronyd_active() {
  local state
  state=$(systemctl is-active chronyd 2>/dev/null || true)
  if [[ $state == active ]]; then
    pass chronyd-active "chronyd active"
  else
    fail chronyd-active "chronyd is ${state:-unknown}"
  fi
}

# ---- main -----------------------------------------------------------------------------------

list() {
  local control
  for control in "${CONTROLS[@]}"; do
    IFS='|' read -r id applied checked <<<"$control"
    printf '%s\t%s\t%s\n' "$id" "$applied" "$checked"
  done
}

main() {
  case ${1:-/} in
    --list)
      list
      return 0
      ;;
    -*)
      printf 'usage: check.sh [ROOT] | check.sh --list\n' >&2
      return 2
      ;;
  esac
  ROOT=${1:-/}
  if [[ ! -d $ROOT ]]; then
    printf 'check.sh: root %s is not a directory\n' "$ROOT" >&2
    return 2
  fi
  [[ $ROOT == / ]] || ROOT=${ROOT%/}

  check_selinux_config
  runtime selinux-runtime check_selinux_runtime
  check_ssh_password_auth
  check_ssh_root_login
  check_ssh_max_auth_tries
  check_ssh_client_alive
  check_ssh_list ssh-ciphers Ciphers "$ALLOWED_CIPHERS"
  check_ssh_list ssh-macs MACs "$ALLOWED_MACS"
  check_ssh_list ssh-kex KexAlgorithms "$ALLOWED_KEX"
  runtime ssh-effective-runtime check_ssh_effective_runtime
  check_auditd_enabled
  runtime auditd-active check_auditd_active
  check_auditd_rules
  check_aide_installed
  check_aide_database
  # shellcheck disable=SC2086 # the lists are space-separated on purpose
  {
    check_sysctl sysctl-redirects $SYSCTL_REDIRECTS
    check_sysctl sysctl-source-route $SYSCTL_SOURCE_ROUTE
    check_sysctl sysctl-rp-filter $SYSCTL_RP_FILTER
    check_sysctl sysctl-aslr $SYSCTL_ASLR
    check_sysctl sysctl-suid-dumpable $SYSCTL_SUID_DUMPABLE
    check_sysctl sysctl-network $SYSCTL_NETWORK
  }
  runtime sysctl-runtime check_sysctl_runtime
  check_services_disabled
  check_cloudwatch_agent
  check_time_sync
  runtime chronyd-active check_chronyd_active

  printf 'SUMMARY pass=%d fail=%d skip=%d\n' "$PASSED" "$FAILED" "$SKIPPED"
  ((FAILED == 0)) || return 1
}

main "$@"
