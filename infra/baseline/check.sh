#!/usr/bin/env bash
# The golden AMI hardening baseline, as a check: the specification that apply.sh implements.
#
#   check.sh [ROOT]   check the system under ROOT (default /); every file control reads under
#                     ROOT, so tests point it at fixture trees. Runtime-only controls need the
#                     running system and print SKIP when ROOT is not /.
#   GOLDEN_AMI_CHECK_RUNTIME=1 check.sh ROOT
#                     for tests only: the runtime controls run although ROOT is a tree (the
#                     tests put stand-ins for the commands they call first on PATH).
#   check.sh --list   one line per control: id <TAB> how apply.sh applies it <TAB> how it is checked
#
# Output: one line per control, "PASS|FAIL|SKIP <control> <evidence>", then
# "SUMMARY pass=N fail=N skip=N". The output travels back through a 2,500-character SSM output
# field, and the boot test needs its SUMMARY: each line is cut to an equal share of the field,
# so that every line at its longest and the SUMMARY still fit, however many controls there are.
# Exit status: 0 when no control fails, 1 when any does, 2 on a usage error.
set -euo pipefail
export LC_ALL=C
# SSM's shell may lack the sbin directories; appended, so that stand-ins first on PATH still win.
PATH=$PATH:/usr/sbin:/usr/bin:/sbin:/bin

ROOT=/
PASSED=0
FAILED=0
SKIPPED=0

# id|applied by apply.sh|checked by this script (the README's baseline table comes from here)
CONTROLS=(
  "selinux-config|SELINUX=enforcing, SELINUXTYPE=targeted in /etc/selinux/config|the first SELINUX= and SELINUXTYPE= values"
  "selinux-runtime|setenforce 1 when the system is permissive|on the running instance: getenforce is Enforcing"
  "ssh-password-auth|PasswordAuthentication no, KbdInteractiveAuthentication no in sshd_config.d/00-golden-ami.conf|effective values (sshd keeps the first it reads; drop-ins come first)"
  "ssh-root-login|PermitRootLogin no (00-golden-ami.conf)|effective value is no"
  "ssh-max-auth-tries|MaxAuthTries 4 (00-golden-ami.conf)|effective value is at most 4"
  "ssh-client-alive|ClientAliveInterval 300, ClientAliveCountMax 3 (00-golden-ami.conf)|interval 1-300 s, count 1-3 (0 would disable the timeout)"
  "ssh-ciphers|Ciphers: chacha20-poly1305, AES-GCM, AES-CTR (00-golden-ami.conf)|every effective cipher is in that list"
  "ssh-macs|MACs: SHA-2 and UMAC-128, encrypt-then-MAC only (00-golden-ami.conf)|every effective MAC is in that list"
  "ssh-kex|KexAlgorithms: sntrup761, curve25519, ECDH, DH group-exchange/16/18 (00-golden-ami.conf)|every effective algorithm is in that list"
  "ssh-effective-runtime|sshd -t validates the drop-in|on the running instance: sshd -T has no password, keyboard-interactive or root login"
  "auditd-enabled|dnf install audit; systemctl enable auditd|multi-user.target wants auditd.service"
  "auditd-active|augenrules --load (auditd refuses systemctl restart)|on the running instance: systemctl is-active auditd"
  "auditd-rules|/etc/audit/rules.d/50-golden-ami.rules; comments out -a task,never|keys identity, sudoers, logins, time-change, modules, privileged cover every item; no -a task,never"
  "auditd-rules-loaded|augenrules --load when it changed the rules|on the running instance: auditctl -l covers the same keys and items; no -a never,task"
  "aide-installed|dnf install aide|/usr/sbin/aide and /etc/aide.conf exist"
  "aide-database|aide --init LAST, after the update and every other change|aide.db.gz is newer than the rpm database"
  "sysctl-redirects|no ICMP redirects accepted or sent (/etc/sysctl.d/90-golden-ami.conf)|effective sysctl.d values, in systemd-sysctl's order"
  "sysctl-source-route|no source-routed packets (90-golden-ami.conf)|effective sysctl.d values"
  "sysctl-rp-filter|strict reverse-path filtering (90-golden-ami.conf)|effective sysctl.d values"
  "sysctl-aslr|kernel.randomize_va_space=2 (90-golden-ami.conf)|effective sysctl.d value"
  "sysctl-suid-dumpable|fs.suid_dumpable=0 (90-golden-ami.conf)|effective sysctl.d value"
  "sysctl-network|SYN cookies, ignore broadcast and bogus ICMP, log martians (90-golden-ami.conf)|effective sysctl.d values"
  "sysctl-runtime|sysctl --system|on the running instance: the live values are the required ones"
  "services-disabled|disable and mask rpcbind, avahi, cups, nfs-server, postfix, telnet, tftp, vsftpd|no target wants any of them"
  "services-inactive|on the running system: disable --now, mask --now (stopped too)|on the running instance: systemctl is-enabled disabled, masked, linked, static or not-found; is-active inactive or failed"
  "cloudwatch-agent|dnf install amazon-cloudwatch-agent; systemctl enable it|agent binary present, unit enabled"
  "time-sync|keeps or adds server 169.254.169.123 prefer (Amazon Time Sync); enables chronyd|that line in chrony.conf or its source files; chronyd enabled"
  "chronyd-active|systemctl enable --now chronyd|on the running instance: systemctl is-active chronyd"
)

OUTPUT_MAX=2500 # the SSM output field
SUMMARY_MAX=32  # "SUMMARY pass=NN fail=NN skip=NN" and its newline
LINE_MAX=$(((OUTPUT_MAX - SUMMARY_MAX) / ${#CONTROLS[@]} - 1)) # and a newline

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

# What each audit key must cover: path:FILE (a watch or -F path/dir), sys:SYSCALL (-S), exe:NAME
# (execution of a file of that name), priv:NAME (execution, by users: auid>=1000, auid!=unset).
AUDIT_KEYS="identity sudoers logins time-change modules privileged"
AUDIT_REQUIRED="
identity path:/etc/passwd path:/etc/group path:/etc/shadow path:/etc/gshadow path:/etc/security/opasswd
sudoers path:/etc/sudoers path:/etc/sudoers.d
logins path:/var/log/lastlog path:/run/faillock
time-change sys:adjtimex sys:settimeofday sys:clock_settime path:/etc/localtime
modules sys:init_module sys:finit_module sys:delete_module exe:kmod exe:insmod exe:modprobe exe:rmmod
privileged priv:sudo priv:su priv:passwd priv:chage priv:newgrp priv:mount priv:umount"

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

# A runtime control: run FUNCTION on the running system, or SKIP when ROOT is a tree (unless a
# test asks for it with GOLDEN_AMI_CHECK_RUNTIME=1).
runtime() { # CONTROL FUNCTION
  if on_root || [[ ${GOLDEN_AMI_CHECK_RUNTIME:-} == 1 ]]; then
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

# The lines sshd applies to every connection, in the order it reads them: FILE with its Include
# lines expanded in place (AL2023's sshd_config includes sshd_config.d/*.conf at its top, so the
# drop-ins come first, in lexical order; 50-redhat.conf includes the crypto policy's file). A
# Match block ends at the end of the file it is in, as in sshd; its lines are left out.
sshd_expand() { # FILE DEPTH
  local file=$1 depth=$2 line keyword rest patterns pattern included
  while IFS= read -r line || [[ -n $line ]]; do
    [[ $line =~ ^[[:space:]]*([^[:space:]=#]+)[[:space:]]*=?[[:space:]]*(.*)$ ]] || continue
    keyword=${BASH_REMATCH[1],,}
    rest=${BASH_REMATCH[2]}
    case $keyword in
      match) return 0 ;;
      include)
        ((depth < 8)) || continue
        read -ra patterns <<<"$rest" # split, not globbed here: the glob is under ROOT
        for pattern in "${patterns[@]}"; do
          [[ $pattern == /* ]] || pattern=/etc/ssh/$pattern
          # ROOT quoted, the pattern not: it expands in lexical order, like sshd's glob(3).
          # shellcheck disable=SC2086
          for included in "${ROOT%/}"$pattern; do
            [[ -f $included ]] && sshd_expand "$included" $((depth + 1))
          done
        done
        ;;
      *) printf '%s %s %s\n' "$keyword" "${file##*/}" "$rest" ;;
    esac
  done <"$file"
}

sshd_lines() {
  local config
  config=$(path /etc/ssh/sshd_config)
  [[ -f $config ]] && sshd_expand "$config" 0
  return 0
}

# The value sshd takes for KEYWORD (or its ALIAS): the first one it reads.
sshd_value() { # KEYWORD [ALIAS]
  sshd_lines | awk -v key="${1,,}" -v alias="${2:-}" '
    $1 == key || $1 == tolower(alias) { sub(/^[^ ]+ [^ ]+ /, ""); gsub(/"/, ""); print; exit }'
}

# Where that value comes from, for the evidence: " (FILE NAME)", or nothing when it is unset.
sshd_from() { # KEYWORD [ALIAS]
  sshd_lines | awk -v key="${1,,}" -v alias="${2:-}" '
    $1 == key || $1 == tolower(alias) { print " (" $2 ")"; exit }'
}

# sshd's time format: 300, 5m, 1h30m -> seconds ("" when it is not one).
seconds() {
  awk -v t="$1" 'BEGIN {
    if (t !~ /^([0-9]+[sSmMhHdDwW]?)+$/) exit
    n = 0; total = 0
    for (i = 1; i <= length(t); i++) {
      c = substr(t, i, 1)
      if (c ~ /[0-9]/) { n = n * 10 + c; continue }
      f = 1
      if (c ~ /[mM]/) f = 60; else if (c ~ /[hH]/) f = 3600
      else if (c ~ /[dD]/) f = 86400; else if (c ~ /[wW]/) f = 604800
      total += n * f; n = 0
    }
    print total + n }'
}

# The sysctl.d files in systemd-sysctl's order: by file name across the directories (a file in
# /etc replaces one of the same name in /run, /usr/local/lib or /usr/lib), then /etc/sysctl.conf.
sysctl_files() {
  local -A chosen=()
  local dir file
  for dir in /usr/lib/sysctl.d /usr/local/lib/sysctl.d /run/sysctl.d /etc/sysctl.d; do
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

# "key|value|file" for each KEY, as systemd-sysctl would set it: the last explicit assignment
# wins; a glob (net.ipv4.conf.*.rp_filter) sets only keys that no line names explicitly, and a
# bare "-key" line names one without a value (so it stays at the kernel's default: "unset").
sysctl_values() { # KEY...
  local files=()
  mapfile -t files < <(sysctl_files)
  ((${#files[@]})) || files=(/dev/null)
  awk -v keys="$*" '
    function norm(k) {
      gsub(/^[ \t]+|[ \t]+$/, "", k)
      if (k ~ /^[^.]*\//) { gsub(/\./, "\001", k); gsub(/\//, ".", k); gsub(/\001/, "/", k) }
      return k
    }
    /^[ \t]*([#;]|$)/ { next }
    {
      line = $0; sub(/^[ \t]+/, "", line); sub(/^-/, "", line)
      # The file name says which file: /etc/sysctl.d replaces a /usr/lib one of the same name.
      file = FILENAME; sub(/.*\//, "", file)
      if (line !~ /=/) { k = norm(line); explicit[k] = "\001"; from[k] = file; next }
      k = line; sub(/=.*/, "", k); k = norm(k)
      v = line; sub(/^[^=]*=/, "", v); gsub(/^[ \t]+|[ \t]+$/, "", v)
      if (k ~ /[*?[]/) { globs[++g] = k; globv[g] = v; globf[g] = file }
      else { explicit[k] = v; from[k] = file }
    }
    END {
      n = split(keys, want, " ")
      for (i = 1; i <= n; i++) {
        k = want[i]; v = ""; f = ""
        if (k in explicit) { v = explicit[k]; f = from[k] }
        else {
          for (j = g; j >= 1; j--) {
            re = globs[j]; gsub(/\./, "\\.", re); gsub(/\*/, "[^.]*", re); gsub(/\?/, "[^.]", re)
            if (k ~ ("^" re "$")) { v = globv[j]; f = globf[j]; break }
          }
        }
        if (v == "\001") v = ""
        print k "|" v "|" f
      }
    }' "${files[@]}"
}

enabled_unit() { # UNIT -> true when some target wants it
  local link
  for link in "$(path /etc/systemd/system)"/*.wants/"$1"; do
    [[ -e $link || -L $link ]] && return 0
  done
  return 1
}

mtime() { date -u -r "$1" +%Y-%m-%dT%H:%M:%S 2>/dev/null || printf 'unknown'; }

# ---- controls -------------------------------------------------------------------------------

check_selinux_config() {
  local file mode type
  file=$(path /etc/selinux/config)
  if [[ ! -f $file ]]; then
    fail selinux-config "/etc/selinux/config is missing"
    return
  fi
  # libselinux takes the first SELINUX= line.
  mode=$(awk -F= '$1 == "SELINUX" { gsub(/[ \t"]/, "", $2); print $2; exit }' "$file")
  type=$(awk -F= '$1 == "SELINUXTYPE" { gsub(/[ \t"]/, "", $2); print $2; exit }' "$file")
  if [[ ${mode,,} == enforcing && $type == targeted ]]; then
    pass selinux-config "SELINUX=enforcing SELINUXTYPE=targeted"
  else
    fail selinux-config "SELINUX=${mode:-unset} SELINUXTYPE=${type:-unset} in /etc/selinux/config"
  fi
}

check_selinux_runtime() {
  local mode
  mode=$(getenforce 2>/dev/null || printf 'unknown (getenforce failed)')
  if [[ $mode == Enforcing ]]; then
    pass selinux-runtime "getenforce: Enforcing"
  else
    fail selinux-runtime "getenforce: $mode"
  fi
}

check_ssh_password_auth() {
  local password kbd bad=()
  password=$(sshd_value PasswordAuthentication)
  kbd=$(sshd_value KbdInteractiveAuthentication ChallengeResponseAuthentication) # its old name
  [[ ${password,,} == no ]] ||
    bad+=("PasswordAuthentication ${password:-unset (yes)}$(sshd_from PasswordAuthentication)")
  [[ ${kbd,,} == no ]] || bad+=("KbdInteractiveAuthentication ${kbd:-unset (yes)}$(
    sshd_from KbdInteractiveAuthentication ChallengeResponseAuthentication)")
  if ((${#bad[@]})); then
    fail ssh-password-auth "$(join "${bad[@]}")"
  else
    pass ssh-password-auth "PasswordAuthentication no, KbdInteractiveAuthentication no"
  fi
}

check_ssh_root_login() {
  local value
  value=$(sshd_value PermitRootLogin)
  if [[ ${value,,} == no ]]; then
    pass ssh-root-login "PermitRootLogin no"
  else
    fail ssh-root-login "PermitRootLogin ${value:-unset (prohibit-password)}, want no$(sshd_from PermitRootLogin)"
  fi
}

check_ssh_max_auth_tries() {
  local value
  value=$(sshd_value MaxAuthTries)
  if [[ $value =~ ^[0-9]+$ ]] && ((10#$value <= 4)); then
    pass ssh-max-auth-tries "MaxAuthTries $value"
  else
    fail ssh-max-auth-tries "MaxAuthTries ${value:-unset (6)}, want at most 4$(sshd_from MaxAuthTries)"
  fi
}

check_ssh_client_alive() {
  local interval count seconds_ bad=()
  interval=$(sshd_value ClientAliveInterval)
  count=$(sshd_value ClientAliveCountMax)
  seconds_=$(seconds "${interval:-0}")
  [[ $seconds_ =~ ^[0-9]+$ ]] && ((seconds_ >= 1 && seconds_ <= 300)) ||
    bad+=("ClientAliveInterval ${interval:-unset (0)}, want 1-300 s$(sshd_from ClientAliveInterval)")
  # 0 would turn the idle disconnect off (OpenSSH 8.2 and later).
  [[ ${count:-3} =~ ^[0-9]+$ ]] && ((10#${count:-3} >= 1 && 10#${count:-3} <= 3)) ||
    bad+=("ClientAliveCountMax $count, want 1-3$(sshd_from ClientAliveCountMax)")
  if ((${#bad[@]})); then
    fail ssh-client-alive "$(join "${bad[@]}")"
  else
    pass ssh-client-alive "ClientAliveInterval $interval, ClientAliveCountMax ${count:-unset (3)}"
  fi
}

# Every item of KEYWORD's effective value is in ALLOWED; modifiers (+ - ^) keep weak defaults.
check_ssh_list() { # CONTROL KEYWORD ALLOWED
  local control=$1 keyword=$2 allowed=$3 value item items bad=()
  value=$(sshd_value "$keyword")
  if [[ -z $value ]]; then
    fail "$control" "$keyword unset: the compiled-in defaults apply"
    return
  fi
  if [[ $value == [+^-]* ]]; then
    fail "$control" "$keyword $value$(sshd_from "$keyword") changes the defaults instead of listing"
    return
  fi
  IFS=, read -ra items <<<"$value"
  for item in "${items[@]}"; do
    [[ " $allowed " == *" $item "* ]] || bad+=("$item")
  done
  if ((${#bad[@]})); then
    fail "$control" "$keyword allows $(join "${bad[@]}")$(sshd_from "$keyword")"
  else
    pass "$control" "$keyword $value"
  fi
}

check_ssh_effective_runtime() {
  local effective bad=() setting
  if ! command -v sshd >/dev/null; then
    fail ssh-effective-runtime "sshd is not installed"
    return
  fi
  if ! effective=$(sshd -T 2>&1); then
    fail ssh-effective-runtime "sshd -T failed: ${effective%%$'\n'*}"
    return
  fi
  for setting in 'passwordauthentication no' 'kbdinteractiveauthentication no' 'permitrootlogin no'; do
    grep -qix "$setting" <<<"$effective" || bad+=("${setting% no}")
  done
  if ((${#bad[@]})); then
    fail ssh-effective-runtime "sshd -T: not no: $(join "${bad[@]}")"
  else
    pass ssh-effective-runtime "sshd -T: no password, keyboard-interactive or root login"
  fi
}

check_auditd_enabled() {
  if enabled_unit auditd.service; then
    pass auditd-enabled "auditd.service enabled"
  else
    fail auditd-enabled "auditd.service is not enabled (no *.wants/auditd.service)"
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

# For each key of AUDIT_KEYS, "key<TAB>missing items" (nothing when it covers them all). A rule
# counts when it is a watch or an "always" rule; execution is a watch with -p x, or -F perm=x
# on -F path, or -F exe; a privileged execution also filters -F auid>=1000 -F auid!=unset.
# Rules files and auditctl -l read alike: auditctl lists a watch as "-w PATH -p PERM -k KEY"
# (a directory with a trailing /), any other rule with "-F key=KEY", and unset as -1.
audit_missing() { # RULES_FILE (- for stdin)
  awk -v keys="$AUDIT_KEYS" -v required="$AUDIT_REQUIRED" '
    function base(p) { sub(/.*\//, "", p); return p }
    function clean(p) { sub(/\/+$/, "", p); sub(/^\/var\/run\//, "/run/", p); return p }
    /^[ \t]*(#|$)/ { next }
    {
      key = ""; action = ""; p = ""; perm = ""; exe = ""; nsys = 0; from = 0; to = 0
      for (i = 1; i <= NF; i++) {
        if ($i == "-w") p = clean($(++i))
        else if ($i == "-p") perm = $(++i)
        else if ($i == "-k") key = $(++i)
        else if ($i == "-a" || $i == "-A") action = $(++i)
        else if ($i == "-S") { n = split($(++i), s, ","); for (j = 1; j <= n; j++) sys[++nsys] = s[j] }
        else if ($i == "-F") {
          f = $(++i)
          if (f ~ /^key=/) key = substr(f, 5)
          else if (f ~ /^(path|dir)=/) { sub(/^[a-z]+=/, "", f); p = clean(f) }
          else if (f ~ /^perm=/) perm = substr(f, 6)
          else if (f ~ /^exe=/) exe = substr(f, 5)
          else if (f == "auid>=1000") from = 1
          else if (f ~ /^auid!=(unset|-1|4294967295)$/) to = 1
        }
      }
      if (key == "" || action ~ /never/) next
      if (p != "") have[key, "path:" p] = 1
      for (j = 1; j <= nsys; j++) have[key, "sys:" sys[j]] = 1
      ran = exe != "" ? exe : (perm ~ /x/ ? p : "")
      if (ran != "") {
        have[key, "exe:" base(ran)] = 1
        if (from && to && action != "") have[key, "priv:" base(ran)] = 1
      }
    }
    END {
      nlines = split(required, lines, "\n")
      for (l = 1; l <= nlines; l++) {
        n = split(lines[l], item, " ")
        if (n == 0) continue
        missing = ""
        for (j = 2; j <= n; j++) {
          if (!((item[1], item[j]) in have)) {
            m = item[j]; sub(/^[a-z]+:/, "", m); missing = missing (missing == "" ? "" : ",") m
          }
        }
        if (missing != "") print item[1] "\t" missing
      }
    }' "$1"
}

check_auditd_rules() {
  local file rules suppressed=() missing=() key items
  file=$(path /etc/audit/rules.d/50-golden-ami.rules)
  # augenrules loads every rules.d file; "-a task,never" in any turns syscall auditing off.
  for rules in "$(path /etc/audit/rules.d)"/*.rules; do
    grep -qE '^[[:space:]]*-a[[:space:]]+(task,never|never,task)' "$rules" 2>/dev/null &&
      suppressed+=("${rules##*/}")
  done
  if ((${#suppressed[@]})); then
    fail auditd-rules "-a task,never in rules.d/$(join "${suppressed[@]}") turns syscall auditing off"
    return
  fi
  if [[ ! -f $file ]]; then
    fail auditd-rules "/etc/audit/rules.d/50-golden-ami.rules is missing"
    return
  fi
  while IFS=$'\t' read -r key items; do
    missing+=("$key: $items")
  done < <(audit_missing "$file")
  if ((${#missing[@]})); then
    fail auditd-rules "missing $(printf '%s; ' "${missing[@]}" | sed 's/; $//')"
  else
    pass auditd-rules "50-golden-ami.rules: every key covers every item"
  fi
}

# The rules the kernel has: augenrules can fail to load a file (or never run) while the files
# are right.
check_auditd_rules_loaded() {
  local loaded missing=() key items
  if ! command -v auditctl >/dev/null; then
    fail auditd-rules-loaded "auditctl is not installed"
    return
  fi
  if ! loaded=$(auditctl -l 2>&1); then
    fail auditd-rules-loaded "auditctl -l failed: ${loaded%%$'\n'*}"
    return
  fi
  if [[ $loaded == "No rules" ]]; then
    fail auditd-rules-loaded "auditctl -l: No rules"
    return
  fi
  if grep -qE '^-a[[:space:]]+(never,task|task,never)' <<<"$loaded"; then
    fail auditd-rules-loaded "auditctl -l has -a never,task: syscall auditing is off"
    return
  fi
  while IFS=$'\t' read -r key items; do
    missing+=("$key: $items")
  done < <(audit_missing - <<<"$loaded")
  if ((${#missing[@]})); then
    fail auditd-rules-loaded "auditctl -l lacks $(printf '%s; ' "${missing[@]}" | sed 's/; $//')"
  else
    pass auditd-rules-loaded "auditctl -l: every key covers every item"
  fi
}

check_aide_installed() {
  local missing=() file
  for file in /usr/sbin/aide /etc/aide.conf; do
    [[ -f $(path "$file") ]] || missing+=("$file")
  done
  if ((${#missing[@]})); then
    fail aide-installed "aide is not installed: $(join "${missing[@]}") missing"
  else
    pass aide-installed "/usr/sbin/aide, /etc/aide.conf"
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
    fail aide-database "aide.db.gz $(mtime "$db") not after rpmdb $(mtime "$rpmdb")"
  fi
}

check_sysctl() { # CONTROL KEY=VALUE...
  local control=$1 pair key got from bad=()
  local -A want=()
  shift
  for pair in "$@"; do
    want[${pair%%=*}]=${pair#*=}
  done
  while IFS='|' read -r key got from; do
    [[ $got == "${want[$key]}" ]] || bad+=("${key#net.}=${got:-unset}${from:+ ($from)}")
  done < <(sysctl_values "${!want[@]}" | sort)
  if ((${#bad[@]})); then
    fail "$control" "$(join "${bad[@]}")"
  elif (($# == 1)); then
    pass "$control" "$1"
  else
    pass "$control" "all $# settings as required"
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
    pass services-disabled "none of the 9 unneeded units is enabled"
  fi
}

# systemctl(1)'s is-enabled states in which nothing starts the unit: masked, disabled, linked
# (is-enabled exits non-zero for them), static (no [Install] section: only something else can
# start it, and is-active shows whether something did), not-found (systemd 253 and later; 252,
# AL2023's, says "No such file or directory" instead). enabled, alias, indirect, generated and
# transient may start it, and an error tells nothing: they fail.
UNIT_OFF_STATES="masked masked-runtime disabled linked linked-runtime static not-found"

unit_enablement() { # UNIT -> its is-enabled state, or "unknown"
  local state
  # The last line: the state, after any note a SysV script's redirection prints first.
  state=$(systemctl is-enabled "$1" 2>&1 | tail -n 1) || true
  case $state in
    *"No such file or directory") printf 'not-found' ;;
    *[!a-z-]* | "") printf 'unknown' ;;
    *) printf '%s' "$state" ;;
  esac
}

# What the running system does, beyond the links on disk: a unit disabled without --now, or
# masked while it ran, still runs; a socket still listens.
check_services_inactive() {
  local unit enabled active bad=()
  for unit in $UNNEEDED_UNITS; do
    enabled=$(unit_enablement "$unit")
    active=$(systemctl is-active "$unit" 2>/dev/null) || true
    if [[ " $UNIT_OFF_STATES " != *" $enabled "* || ! $active =~ ^(inactive|failed)$ ]]; then
      bad+=("$unit ($enabled, ${active:-unknown})")
    fi
  done
  if ((${#bad[@]})); then
    fail services-inactive "$(join "${bad[@]}")"
  else
    pass services-inactive "none of the 9 unneeded units is enabled or active"
  fi
}

check_cloudwatch_agent() {
  if [[ ! -f $(path /opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent) ]]; then
    fail cloudwatch-agent "not installed: no /opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent"
  elif ! enabled_unit amazon-cloudwatch-agent.service; then
    fail cloudwatch-agent "amazon-cloudwatch-agent.service is not enabled"
  else
    pass cloudwatch-agent "installed and enabled"
  fi
}

# The files chrony reads: chrony.conf, then the files its sourcedir (*.sources), confdir
# (*.conf) and include lines name.
chrony_files() {
  local conf kind arg file
  conf=$(path /etc/chrony.conf)
  [[ -f $conf ]] || return 0
  printf '%s\n' "$conf"
  while read -r kind arg; do
    case $kind in
      sourcedir) set -- "$(path "$arg")"/*.sources ;;
      confdir) set -- "$(path "$arg")"/*.conf ;;
      include)
        # The argument is a glob on purpose (include /etc/chrony.d/*.conf).
        # shellcheck disable=SC2086
        set -- "${ROOT%/}"$arg
        ;;
    esac
    for file in "$@"; do
      [[ -f $file ]] && printf '%s\n' "$file"
    done
  done < <(awk '$1 ~ /^(sourcedir|confdir|include)$/ { for (i = 2; i <= NF; i++) print $1, $i }' "$conf")
}

check_time_sync() {
  local files=() line
  mapfile -t files < <(chrony_files)
  if ((${#files[@]} == 0)); then
    fail time-sync "/etc/chrony.conf is missing"
    return
  fi
  line=$(awk '$1 == "server" && $2 == "169.254.169.123" {
      for (i = 3; i <= NF; i++) if ($i == "prefer") { print FILENAME; exit }
    }' "${files[@]}")
  if [[ -z $line ]]; then
    fail time-sync "no 'server 169.254.169.123 ... prefer' in chrony.conf or its source files"
  elif ! enabled_unit chronyd.service; then
    fail time-sync "chronyd.service is not enabled"
  else
    pass time-sync "169.254.169.123 prefer (${line#"${ROOT%/}"}), chronyd enabled"
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
  local control id applied checked
  for control in "${CONTROLS[@]}"; do
    IFS='|' read -r id applied checked <<<"$control"
    printf '%s\t%s\t%s\n' "$id" "$applied" "$checked"
  done
}

usage() {
  printf 'usage: check.sh [ROOT] | check.sh --list\n' >&2
  return 2
}

main() {
  (($# <= 1)) || usage || return
  case ${1:-/} in
    --list)
      list
      return 0
      ;;
    -*) usage || return ;;
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
  runtime auditd-rules-loaded check_auditd_rules_loaded
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
  runtime services-inactive check_services_inactive
  check_cloudwatch_agent
  check_time_sync
  runtime chronyd-active check_chronyd_active

  printf 'SUMMARY pass=%d fail=%d skip=%d\n' "$PASSED" "$FAILED" "$SKIPPED"
  ((FAILED == 0)) || return 1
}

main "$@"
