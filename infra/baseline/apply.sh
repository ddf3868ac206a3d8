#!/usr/bin/env bash
# Apply the golden AMI hardening baseline; check.sh is its specification.
#
#   apply.sh [ROOT]   (default /)
#
# Run by the bake on the temporary Amazon Linux 2023 instance AFTER the OS update, every month:
# idempotent (a second run changes nothing and says "already in place") and safe to re-run.
# Every path is under ROOT. With a ROOT other than / nothing acts on the running system: dnf and
# systemctl get --installroot / --root, and setenforce, sshd -t, sysctl --system, augenrules
# and restorecon are not run (tests put stand-ins for dnf, systemctl, aide and uname first on
# PATH). AIDE's database is initialised last, so that it describes the updated, hardened system.
# Output: one line per group, "apply <group>: <what it did>" or "apply <group>: already in place".
set -euo pipefail
export LC_ALL=C
# SSM's shell may lack the sbin directories; appended, so that stand-ins first on PATH still win.
PATH=$PATH:/usr/sbin:/usr/bin:/sbin:/bin

ROOT=/
CHANGED=0 # something this run changed: AIDE's database must describe it

join() { # ITEM... -> "a, b, c"
  local out
  printf -v out '%s, ' "$@"
  printf '%s' "${out%, }"
}

say() { # GROUP [CHANGE...]
  local group=$1
  shift
  if (($#)); then
    CHANGED=1
    printf 'apply %s: %s\n' "$group" "$(join "$@")"
  else
    printf 'apply %s: already in place\n' "$group"
  fi
}

path() { printf '%s%s' "${ROOT%/}" "$1"; }
on_root() { [[ $ROOT == / ]]; }

# A file written on the running system gets its default SELinux label back.
relabel() { # FILE...
  if on_root && command -v restorecon >/dev/null; then
    restorecon -F "$@" 2>/dev/null || true
  fi
}

# Write CONTENT (plus a newline) to FILE unless it already holds exactly that; true when it wrote.
write_file() { # FILE CONTENT MODE
  local file=$1 content=$2 mode=$3
  if [[ -f $file && ! -L $file ]] && [[ $(cat -- "$file") == "$content" ]]; then
    return 1
  fi
  mkdir -p -- "$(dirname -- "$file")"
  printf '%s\n' "$content" >"$file"
  chmod "$mode" "$file"
  relabel "$file"
}

wanted() { # UNIT -> true when some target wants it
  local link
  for link in "$(path /etc/systemd/system)"/*.wants/"$1"; do
    [[ -e $link || -L $link ]] && return 0
  done
  return 1
}

systemctl_() { # VERB UNIT...: on the running system, or on the tree under ROOT
  if on_root; then
    systemctl --quiet "$@"
  else
    systemctl --quiet --root="$ROOT" "$@"
  fi
}

# Enable UNIT unless a target already wants it (on the running system, start it too); true
# when it enabled it.
enable_unit() { # UNIT
  wanted "$1" && return 1
  if on_root; then
    systemctl --quiet enable --now "$1"
  else
    systemctl_ enable "$1"
  fi
}

# ---- the groups -----------------------------------------------------------------------------

# package:file that shows it is installed
PACKAGES="aide:/usr/sbin/aide amazon-cloudwatch-agent:/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent audit:/usr/sbin/auditd chrony:/usr/sbin/chronyd"

# One dnf transaction for everything missing (dnf loads the repositories' metadata once).
apply_packages() {
  local entry missing=()
  for entry in $PACKAGES; do
    [[ -e $(path "${entry#*:}") ]] || missing+=("${entry%%:*}")
  done
  if ((${#missing[@]})); then
    if on_root; then
      dnf -y install "${missing[@]}" >/dev/null
    else
      dnf -y --installroot="$ROOT" install "${missing[@]}" >/dev/null
    fi
    say packages "installed $(join "${missing[@]}")"
  else
    say packages
  fi
}

apply_selinux() {
  local file changed=() key value
  file=$(path /etc/selinux/config)
  mkdir -p -- "$(dirname -- "$file")"
  [[ -f $file ]] || : >"$file"
  for key in SELINUX=enforcing SELINUXTYPE=targeted; do
    value=${key#*=}
    key=${key%%=*}
    # Every line of the key says the value (libselinux reads the first one): nothing to do.
    if awk -v key="$key" -v want="$key=$value" '
        index($0, key "=") == 1 { seen = 1; if ($0 != want) bad = 1 }
        END { exit !(seen && !bad) }' "$file"; then
      continue
    fi
    if grep -q "^$key=" "$file"; then
      sed -i "s/^$key=.*/$key=$value/" "$file"
    else
      printf '%s=%s\n' "$key" "$value" >>"$file"
    fi
    changed+=("$key=$value in /etc/selinux/config")
  done
  ((${#changed[@]} == 0)) || relabel "$file"
  if on_root; then
    case $(getenforce 2>/dev/null || printf 'Disabled') in
      Permissive)
        setenforce 1
        changed+=("setenforce 1")
        ;;
      Disabled)
        # Never fail for it: enforcing starts at the next boot, after a full relabel.
        if [[ ! -e /.autorelabel ]]; then
          touch /.autorelabel
          changed+=("SELinux is disabled now: enforcing after a relabel at the next boot")
        fi
        ;;
    esac
  fi
  say selinux "${changed[@]}"
}

# Read before AL2023's 50-redhat.conf (and its crypto policy include): sshd keeps the first
# value it reads for each keyword.
SSHD_DROP_IN="# Golden AMI hardening baseline (infra/baseline/apply.sh; checked by check.sh).
# Named 00- so that sshd reads it before 50-redhat.conf: sshd keeps the first value it reads.
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
MaxAuthTries 4
ClientAliveInterval 300
ClientAliveCountMax 3
Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr
MACs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,umac-128-etm@openssh.com
KexAlgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp521,ecdh-sha2-nistp384,ecdh-sha2-nistp256,diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512"

apply_sshd() {
  local file
  file=$(path /etc/ssh/sshd_config.d/00-golden-ami.conf)
  if write_file "$file" "$SSHD_DROP_IN" 600; then
    if on_root && ! sshd -t; then
      # Removed, so that sshd keeps working and a re-run tries again.
      rm -f -- "$file"
      printf 'apply.sh: sshd -t rejects /etc/ssh/sshd_config.d/00-golden-ami.conf\n' >&2
      return 1
    fi
    say sshd "wrote /etc/ssh/sshd_config.d/00-golden-ami.conf"
  else
    say sshd
  fi
}

# The rules, for this machine's architecture: 32-bit syscall rules only where the kernel runs
# 32-bit programs that could call them (x86_64); elsewhere auditctl could reject them.
audit_rules() {
  local b32=""
  [[ $(uname -m) == x86_64 ]] && b32=yes
  cat <<'EOF'
## Golden AMI hardening baseline (infra/baseline/apply.sh; checked by check.sh)
## Identity: accounts and passwords
-w /etc/passwd -p wa -k identity
-w /etc/group -p wa -k identity
-w /etc/shadow -p wa -k identity
-w /etc/gshadow -p wa -k identity
-w /etc/security/opasswd -p wa -k identity
## Who may act as root
-w /etc/sudoers -p wa -k sudoers
-w /etc/sudoers.d -p wa -k sudoers
## Logins
-w /var/log/lastlog -p wa -k logins
-w /var/run/faillock -p wa -k logins
## Time changes
-a always,exit -F arch=b64 -S adjtimex,settimeofday,clock_settime -k time-change
EOF
  [[ -z $b32 ]] || printf '%s\n' \
    "-a always,exit -F arch=b32 -S adjtimex,settimeofday,clock_settime -k time-change"
  cat <<'EOF'
-w /etc/localtime -p wa -k time-change
## Kernel modules: the syscalls and the tools (insmod, modprobe, rmmod run kmod)
-a always,exit -F arch=b64 -S init_module,finit_module,delete_module -k modules
EOF
  [[ -z $b32 ]] || printf '%s\n' \
    "-a always,exit -F arch=b32 -S init_module,finit_module,delete_module -k modules"
  cat <<'EOF'
-w /usr/bin/kmod -p x -k modules
-w /usr/sbin/insmod -p x -k modules
-w /usr/sbin/modprobe -p x -k modules
-w /usr/sbin/rmmod -p x -k modules
## Privileged (setuid/setgid) commands run by users
-a always,exit -F path=/usr/bin/sudo -F perm=x -F auid>=1000 -F auid!=unset -k privileged
-a always,exit -F path=/usr/bin/su -F perm=x -F auid>=1000 -F auid!=unset -k privileged
-a always,exit -F path=/usr/bin/passwd -F perm=x -F auid>=1000 -F auid!=unset -k privileged
-a always,exit -F path=/usr/bin/chage -F perm=x -F auid>=1000 -F auid!=unset -k privileged
-a always,exit -F path=/usr/bin/newgrp -F perm=x -F auid>=1000 -F auid!=unset -k privileged
-a always,exit -F path=/usr/bin/mount -F perm=x -F auid>=1000 -F auid!=unset -k privileged
-a always,exit -F path=/usr/bin/umount -F perm=x -F auid>=1000 -F auid!=unset -k privileged
EOF
}

NEVER_TASK='^[[:space:]]*-a[[:space:]]+(task,never|never,task)'

apply_auditd() {
  local changed=() rules load=""
  # Fedora's audit package (AL2023's comes from it) ships "-a task,never" in audit.rules: with
  # it, no process is syscall-audited and the rules below would never fire.
  for rules in "$(path /etc/audit/rules.d)"/*.rules; do
    if [[ -f $rules ]] && grep -qE "$NEVER_TASK" "$rules"; then
      sed -i -E "s/($NEVER_TASK.*)$/# \\1  # off: the golden AMI audits syscalls (apply.sh)/" "$rules"
      relabel "$rules"
      changed+=("commented out -a task,never in /etc/audit/rules.d/${rules##*/}")
      load=yes
    fi
  done
  if write_file "$(path /etc/audit/rules.d/50-golden-ami.rules)" "$(audit_rules)" 600; then
    changed+=("wrote /etc/audit/rules.d/50-golden-ami.rules")
    load=yes
  fi
  if ! wanted auditd.service; then
    # auditd refuses systemctl restart (and stop); start is allowed.
    systemctl_ enable auditd.service
    changed+=("enabled auditd")
  fi
  if on_root; then
    if ! systemctl is-active --quiet auditd; then
      systemctl --quiet start auditd
      changed+=("started auditd")
    fi
    if [[ -n $load ]]; then
      augenrules --load >/dev/null
      changed+=("loaded the rules (augenrules --load)")
    fi
  fi
  say auditd "${changed[@]}"
}

SYSCTL_CONF="# Golden AMI hardening baseline (infra/baseline/apply.sh; checked by check.sh)
net.ipv4.conf.all.accept_redirects = 0
net.ipv4.conf.default.accept_redirects = 0
net.ipv4.conf.all.send_redirects = 0
net.ipv4.conf.default.send_redirects = 0
net.ipv4.conf.all.secure_redirects = 0
net.ipv4.conf.default.secure_redirects = 0
net.ipv6.conf.all.accept_redirects = 0
net.ipv6.conf.default.accept_redirects = 0
net.ipv4.conf.all.accept_source_route = 0
net.ipv4.conf.default.accept_source_route = 0
net.ipv6.conf.all.accept_source_route = 0
net.ipv6.conf.default.accept_source_route = 0
net.ipv4.conf.all.rp_filter = 1
net.ipv4.conf.default.rp_filter = 1
net.ipv4.tcp_syncookies = 1
net.ipv4.icmp_echo_ignore_broadcasts = 1
net.ipv4.icmp_ignore_bogus_error_responses = 1
net.ipv4.conf.all.log_martians = 1
net.ipv4.conf.default.log_martians = 1
kernel.randomize_va_space = 2
fs.suid_dumpable = 0"

apply_sysctl() {
  if write_file "$(path /etc/sysctl.d/90-golden-ami.conf)" "$SYSCTL_CONF" 644; then
    on_root && sysctl --system >/dev/null
    say sysctl "wrote /etc/sysctl.d/90-golden-ami.conf"
  else
    say sysctl
  fi
}

UNNEEDED_UNITS="rpcbind.service rpcbind.socket avahi-daemon.service cups.service nfs-server.service postfix.service telnet.socket tftp.socket vsftpd.service"

# Disable the unneeded units a target wants, and mask those installed (a socket or another
# unit could otherwise still start them).
apply_services() {
  local unit disabled=() masked=()
  for unit in $UNNEEDED_UNITS; do
    if wanted "$unit"; then
      if on_root; then
        systemctl --quiet disable --now "$unit"
      else
        systemctl_ disable "$unit"
      fi
      disabled+=("$unit")
    fi
    if [[ -e $(path "/usr/lib/systemd/system/$unit") &&
      $(readlink "$(path "/etc/systemd/system/$unit")" || true) != /dev/null ]]; then
      if on_root; then
        systemctl --quiet mask --now "$unit"
      else
        systemctl_ mask "$unit"
      fi
      masked+=("$unit")
    fi
  done
  local changed=()
  ((${#disabled[@]} == 0)) || changed+=("disabled $(join "${disabled[@]}")")
  ((${#masked[@]} == 0)) || changed+=("masked $(join "${masked[@]}")")
  say services "${changed[@]}"
}

apply_cloudwatch_agent() {
  local changed=()
  if enable_unit amazon-cloudwatch-agent.service; then
    changed+=("enabled amazon-cloudwatch-agent")
  fi
  say cloudwatch-agent "${changed[@]}"
}

CHRONY_SOURCE="# Golden AMI hardening baseline (infra/baseline/apply.sh): Amazon Time Sync Service.
server 169.254.169.123 prefer iburst minpoll 4 maxpoll 4"

# AL2023 already uses Amazon Time Sync (chrony.conf's "sourcedir /etc/chrony.d" and
# link-local.sources): keep that, and add it only where it is missing.
apply_chrony() {
  local changed=() conf sources
  conf=$(path /etc/chrony.conf)
  [[ -f $conf ]] || : >"$conf"
  if ! grep -qE '^sourcedir[[:space:]]+/etc/chrony\.d/?[[:space:]]*$' "$conf"; then
    printf '\n# Amazon Time Sync Service (infra/baseline/apply.sh)\nsourcedir /etc/chrony.d\n' >>"$conf"
    relabel "$conf"
    changed+=("added sourcedir /etc/chrony.d to /etc/chrony.conf")
  fi
  sources=("$(path /etc/chrony.d)"/*.sources)
  if ! grep -qsE '^server[[:space:]]+169\.254\.169\.123([[:space:]].*)?[[:space:]]prefer([[:space:]]|$)' \
    "$conf" "${sources[@]}"; then
    write_file "$(path /etc/chrony.d/golden-ami.sources)" "$CHRONY_SOURCE" 644 || true
    changed+=("wrote /etc/chrony.d/golden-ami.sources")
  fi
  if enable_unit chronyd.service; then
    changed+=("enabled chronyd")
  fi
  say chrony "${changed[@]}"
}

# Last: the database describes the system as the update and this script leave it. Initialised
# when missing, older than the package database, or when this run changed anything.
apply_aide() {
  local db rpmdb conf why=""
  db=$(path /var/lib/aide/aide.db.gz)
  rpmdb=$(path /var/lib/rpm/rpmdb.sqlite)
  conf=$(path /etc/aide.conf)
  if [[ ! -f $db ]]; then
    why="no database yet"
  elif [[ -f $rpmdb && ! $db -nt $rpmdb ]]; then
    why="the packages changed since"
  elif [[ $conf -nt $db ]]; then
    why="aide.conf changed since"
  elif ((CHANGED)); then
    why="this run changed the system"
  fi
  if [[ -z $why ]]; then
    say aide
    return
  fi
  aide --init --config="$conf" >/dev/null
  mv -f -- "$(path /var/lib/aide/aide.db.new.gz)" "$db"
  relabel "$db"
  say aide "initialised the database ($why)"
}

main() {
  if (($# > 1)) || [[ ${1:-} == -* ]]; then
    printf 'usage: apply.sh [ROOT]\n' >&2
    return 2
  fi
  ROOT=${1:-/}
  if [[ ! -d $ROOT ]]; then
    printf 'apply.sh: root %s is not a directory\n' "$ROOT" >&2
    return 2
  fi
  [[ $ROOT == / ]] || ROOT=${ROOT%/}
  apply_packages
  apply_selinux
  apply_sshd
  apply_auditd
  apply_sysctl
  apply_services
  apply_cloudwatch_agent
  apply_chrony
  apply_aide # last: after every other change
}

main "$@"
