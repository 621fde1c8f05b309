//go:build race

package gnaming

const raceEnabled = true
