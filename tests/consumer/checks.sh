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
soname_of() { readelf -d "$1" | sed -n 's/.*(SONAME).*\[\(.*\)\]$/\1/p'; }
report() {
  echo "$passed passed, $failed failed"
  [ "$failed" = 0 ]
}
