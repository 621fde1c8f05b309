# The checks the install tests (tests/consumer/*/check-install) share: each prints "ok   WHAT" or
# "FAIL WHAT" with what differed, and counts; `report` prints "N passed, M failed" and fails if any did.
passed=0
failed=0

expect_eq() { # what expected observed
  if [ "$2" = "$3" ]; then
    passed=$((passed + 1)); echo "ok   $1"
  else
    failed=$((failed + 1)); echo "FAIL $1"; echo "       expected: $2"; echo "       observed: $3"
  fi
}
expect_ok() { # what command...
  local what=$1 log
  shift
  if log=$("$@" 2>&1); then
    passed=$((passed + 1)); echo "ok   $what"
  else
    failed=$((failed + 1)); echo "FAIL $what"; echo "$log" | tail -20 | sed 's/^/       /'
  fi
}
expect_fails_saying() { # what text command...
  local what=$1 text=$2 log
  shift 2
  if log=$("$@" 2>&1); then
    failed=$((failed + 1)); echo "FAIL $what: it succeeded"
  elif ! echo "$log" | tr -s ' \n' ' ' | grep -qF -- "$text"; then
    failed=$((failed + 1)); echo "FAIL $what: no \"$text\" in"; echo "$log" | tail -20 | sed 's/^/       /'
  else
    passed=$((passed + 1)); echo "ok   $what"
  fi
}
# The command line tool `make install-cli` put under PREFIX: it runs from there with no help from the build
# tree, and its completion scripts lie where bash-completion, zsh and fish look, bash's accepted by bash.
expect_cli_installed() { # prefix version
  local gnaming=$1/bin/gnaming share=$1/share out
  expect_eq "the installed gnaming says its version" "gnaming $2" "$(env -u LD_LIBRARY_PATH "$gnaming" --version 2>&1)"
  out=$(env -u LD_LIBRARY_PATH "$gnaming" resolve 'pass:///127.0.0.1:50051#2,127.0.0.1:50052' 2>&1)
  expect_eq "the installed gnaming resolves a pass: target to 3 addresses" 3 "$(echo "$out" | grep -c '^  127.0.0.1:5005')"
  expect_ok "bash parses the installed bash completion" bash -n "$share/bash-completion/completions/gnaming"
  expect_eq "sourcing it makes bash complete gnaming" "gnaming" \
    "$(bash --norc --noprofile -c '. "$1" && complete -p gnaming' bash "$share/bash-completion/completions/gnaming" 2>&1 | awk '{print $NF}')"
  expect_eq "the zsh completion is a zsh completion function for gnaming" "#compdef gnaming" \
    "$(head -1 "$share/zsh/site-functions/_gnaming" 2>&1)"
  expect_ok "the fish completion completes gnaming" grep -q '^complete -c gnaming ' "$share/fish/vendor_completions.d/gnaming.fish"
}
soname_of() { readelf -d "$1" | sed -n 's/.*(SONAME).*\[\(.*\)\]$/\1/p'; }
report() {
  echo "$passed passed, $failed failed"
  [ "$failed" = 0 ]
}
