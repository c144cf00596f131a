#!/usr/bin/env bash
# Print the URI of the Debian archive that serves SUITE's main component in this machine's apt sources
# (as apt itself reads them: one-line .list files and deb822 .sources alike), e.g. for debootstrap.
#   scripts/apt-mirror.sh bookworm            -> the mirror, exit 0; none configured -> exit 1
# Extra arguments go to apt-get (tests point -o Dir::Etc at a sources tree of their own).
set -euo pipefail
suite=${1:?usage: apt-mirror.sh SUITE [apt-get options]}
shift
apt-get "$@" indextargets --no-release-info --format '$(TARGET_OF) $(RELEASE) $(COMPONENT) $(REPO_URI)' 2>/dev/null \
  | awk -v suite="$suite" '$1 == "deb" && $2 == suite && $3 == "main" { sub("/$", "", $4); print $4; found = 1; exit }
                           END { exit found ? 0 : 1 }'
