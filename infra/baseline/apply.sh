#!/usr/bin/env bash
# Apply the golden AMI hardening baseline (NIST 800-171 aligned; check.sh is its specification).
#
#   apply.sh [ROOT]   (default /)
#
# Run by the bake on the temporary Amazon Linux 2023 instance AFTER the OS update, every month:
# idempotent (a second run changes nothing and says "already in place") and safe to re-run.
# Every path is under ROOT. With a ROOT other than / the commands that act on a running system
# (dnf, systemctl, setenforce, sshd, sysctl, augenrules, aide) are still called, with --root or
# --installroot where they take one: that is for tests, which put stand-ins first on PATH.
# AIDE's database is initialised last, so that it describes the updated, hardened system.
set -euo pipefail
export LC_ALL=C

ROOT=/

say() { printf 'apply %s: %s\n' "$1" "$2"; }
join() { # ITEM... -> "a, b, c"
  local out
  printf -v out '%s, ' "$@"
  printf '%s' "${out%, }"
}

path() { printf '%s%s' "${ROOT%/}" "$1"; }
on_root() { [[ $ROOT == / ]]; }

# Write CONTENT to FILE unless it already holds exactly that; true when it wrote.
write_file() { # FILE CONTENT MODE
  local file=$1 content=$2 mode=$3
  if [[ -f $file ]] && [[ $(cat -- "$file") == "$content" ]]; then
    return 1
  fi
  mkdir -p -- "$(dirname -- "$file")"
  printf '%s\n' "$content" >"$file"
  chmod "$mode" "$file"
}

# Install the packages whose marker file is missing (PACKAGE:FILE ...).
install_missing() {
  local entry package file missing=()
  for entry in "$@"; do
    package=${entry%%:*}
    file=${entry#*:}
    [[ -e $(path "$file") ]] || missing+=("$package")
  done
  ((${#missing[@]})) || return 1
  if on_root; then
    dnf -y install "${missing[@]}" >/dev/null
  else
    dnf -y --installroot="$ROOT" install "${missing[@]}" >/dev/null
  fi
  printf '%s' "${missing[*]}"
}

wanted() { # UNIT -> true when some target wants it
  local link
  for link in "$(path /etc/systemd/system)"/*.wants/"$1"; do
    [[ -e $link || -L $link ]] && return 0
  done
  return 1
}

enable_unit() { # UNIT [--now]; true when it changed something
  if wanted "$1"; then
    return 1
  fi
  if on_root; then
    systemctl enable "$@" >/dev/null 2>&1
  else
    systemctl --root="$ROOT" enable "$1" >/dev/null 2>&1
  fi
}

# ---- the controls ---------------------------------------------------------------------------

apply_selinux() {
  local file changed=()
  file=$(path /etc/selinux/config)
  mkdir -p -- "$(dirname -- "$file")"
  touch -- "$file"
  if ! grep -qx 'SELINUX=enforcing' "$file"; then
    if grep -q '^SELINUX=' "$file"; then
      sed -i 's/^SELINUX=.*/SELINUX=enforcing/' "$file"
    else
      printf 'SELINUX=enforcing\n' >>"$file"
    fi
    changed+=("SELINUX=enforcing")
  fi
  if ! grep -qx 'SELINUXTYPE=targeted' "$file"; then
    if grep -q '^SELINUXTYPE=' "$file"; then
      sed -i 's/^SELINUXTYPE=.*/SELINUXTYPE=targeted/' "$file"
    else
      printf 'SELINUXTYPE=targeted\n' >>"$file"
    fi
    changed+=("SELINUXTYPE=targeted")
  fi
  if on_root; then
    case $(getenforce 2>/dev/null || printf 'Disabled') in
      Permissive)
        setenforce 1
        changed+=("setenforce 1")
        ;;
      Disabled)
        # Enforcing from a disabled state needs a relabel, which the next boot does.
        touch /.autorelabel
        changed+=("relabel and enforce at the next boot (SELinux is disabled now)")
        ;;
    esac
  fi
  if ((${#changed[@]})); then
    say selinux "$(join "${changed[@]}")"
  else
    say selinux "already in place"
  fi
}

SSHD_DROP_IN="# Golden AMI hardening baseline (infra/baseline/apply.sh). Read before 50-redhat.conf:
# sshd keeps the first value it reads for each keyword.
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
    on_root && sshd -t
    say sshd "wrote /etc/ssh/sshd_config.d/00-golden-ami.conf"
  else
    say sshd "already in place"
  fi
}

AUDIT_RULES="## Golden AMI hardening baseline (infra/baseline/apply.sh)
# Identity files
-w /etc/passwd -p wa -k identity
-w /etc/group -p wa -k identity
-w /etc/shadow -p wa -k identity
-w /etc/gshadow -p wa -k identity
-w /etc/security/opasswd -p wa -k identity
# Privilege configuration
-w /etc/sudoers -p wa -k sudoers
-w /etc/sudoers.d/ -p wa -k sudoers
# Logins
-w /var/log/lastlog -p wa -k logins
-w /var/run/faillock/ -p wa -k logins
# Time changes
-a always,exit -F arch=b64 -S adjtimex,settimeofday,clock_settime -k time-change
-a always,exit -F arch=b32 -S adjtimex,settimeofday,clock_settime -k time-change
-w /etc/localtime -p wa -k time-change
# Kernel module loading
-a always,exit -F arch=b64 -S init_module,finit_module,delete_module -k modules
-w /usr/bin/kmod -p x -k modules
-w /usr/sbin/insmod -p x -k modules
-w /usr/sbin/modprobe -p x -k modules
-w /usr/sbin/rmmod -p x -k modules
# Privileged commands run by users
-a always,exit -F path=/usr/bin/sudo -F perm=x -F auid>=1000 -F auid!=unset -k privileged
-a always,exit -F path=/usr/bin/su -F perm=x -F auid>=1000 -F auid!=unset -k privileged
-a always,exit -F path=/usr/bin/passwd -F perm=x -F auid>=1000 -F auid!=unset -k privileged
-a always,exit -F path=/usr/bin/chage -F perm=x -F auid>=1000 -F auid!=unset -k privileged
-a always,exit -F path=/usr/bin/newgrp -F perm=x -F auid>=1000 -F auid!=unset -k privileged
-a always,exit -F path=/usr/bin/mount -F perm=x -F auid>=1000 -F auid!=unset -k privileged
-a always,exit -F path=/usr/bin/umount -F perm=x -F auid>=1000 -F auid!=unset -k privileged"

apply_auditd() {
  local changed=() installed
  if installed=$(install_missing audit:/usr/sbin/auditd); then
    changed+=("installed $installed")
  fi
  if write_file "$(path /etc/audit/rules.d/50-golden-ami.rules)" "$AUDIT_RULES" 600; then
    changed+=("wrote /etc/audit/rules.d/50-golden-ami.rules")
    # auditd refuses systemctl restart; augenrules loads the rules instead.
    on_root && augenrules --load >/dev/null
  fi
  if enable_unit auditd.service; then
    changed+=("enabled auditd")
  fi
  if ((${#changed[@]})); then
    say auditd "$(join "${changed[@]}")"
  else
    say auditd "already in place"
  fi
}

SYSCTL_CONF="# Golden AMI hardening baseline (infra/baseline/apply.sh)
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
    say sysctl "already in place"
  fi
}

UNNEEDED_UNITS="rpcbind.service rpcbind.socket avahi-daemon.service cups.service nfs-server.service postfix.service telnet.socket tftp.socket vsftpd.service"

apply_services() {
  local unit disabled=()
  for unit in $UNNEEDED_UNITS; do
    wanted "$unit" || continue
    if on_root; then
      systemctl disable --now "$unit" >/dev/null 2>&1
    else
      systemctl --root="$ROOT" disable "$unit" >/dev/null 2>&1
    fi
    disabled+=("$unit")
  done
  if ((${#disabled[@]})); then
    say services "disabled $(join "${disabled[@]}")"
  else
    say services "already in place"
  fi
}

apply_cloudwatch_agent() {
  local changed=() installed
  if installed=$(install_missing amazon-cloudwatch-agent:/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent); then
    changed+=("installed $installed")
  fi
  if enable_unit amazon-cloudwatch-agent.service; then
    changed+=("enabled amazon-cloudwatch-agent")
  fi
  if ((${#changed[@]})); then
    say cloudwatch-agent "$(join "${changed[@]}")"
  else
    say cloudwatch-agent "already in place"
  fi
}

CHRONY_SOURCE="# Golden AMI hardening baseline (infra/baseline/apply.sh): Amazon Time Sync Service.
server 169.254.169.123 prefer iburst minpoll 4 maxpoll 4"

apply_chrony() {
  local changed=() installed conf sources
  if installed=$(install_missing chrony:/usr/sbin/chronyd); then
    changed+=("installed $installed")
  fi
  conf=$(path /etc/chrony.conf)
  touch -- "$conf"
  if ! grep -qE '^sourcedir[[:space:]]+/etc/chrony.d([[:space:]]|$)' "$conf"; then
    printf 'sourcedir /etc/chrony.d\n' >>"$conf"
    changed+=("added sourcedir /etc/chrony.d")
  fi
  sources=("$(path /etc/chrony.d)"/*.sources)
  if ! grep -qsE '^server[[:space:]]+169\.254\.169\.123[[:space:]].*prefer' "$conf" "${sources[@]}"; then
    write_file "$(path /etc/chrony.d/golden-ami.sources)" "$CHRONY_SOURCE" 644 || true
    changed+=("wrote /etc/chrony.d/golden-ami.sources")
  fi
  if enable_unit chronyd.service --now; then
    changed+=("enabled chronyd")
  fi
  if ((${#changed[@]})); then
    say chrony "$(join "${changed[@]}")"
  else
    say chrony "already in place"
  fi
}

apply_aide() {
  local installed note=""
  if installed=$(install_missing aide:/usr/sbin/aide); then
    note="installed $installed, "
  fi
  # Every month: the database must describe the system as this bake leaves it.
  aide --init --config="$(path /etc/aide.conf)" >/dev/null
  mv -f -- "$(path /var/lib/aide/aide.db.new.gz)" "$(path /var/lib/aide/aide.db.gz)"
  say aide "${note}database initialised"
}

main() {
  case ${1:-/} in
    -*)
      printf 'usage: apply.sh [ROOT]\n' >&2
      return 2
      ;;
  esac
  ROOT=${1:-/}
  if [[ ! -d $ROOT ]]; then
    printf 'apply.sh: root %s is not a directory\n' "$ROOT" >&2
    return 2
  fi
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
