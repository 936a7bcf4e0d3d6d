// Package static holds the parts of the generated protocol core that do not
// depend on the spec table: the reply writer, the dot-stuffing writer and
// the argument scanners. The generator copies these files into its output
// package (renaming the package), so that the output imports nothing but
// the standard library. They live here as an ordinary package so that they
// are compiled and tested on their own, against table.go: the names they
// use that the table decides (limits, response codes, errors), generated
// from the same table as the core, so they cannot drift from it.
package pop3
