// Command searchbench times the search engine on a built-in space with
// synthetic batches and reports peak memory: the numbers in docs/search.md.
//
//	go run ./search/internal/searchbench -what weight -k 7 -steps 10
//
// -what weight times binarized weight steps (a new path every step), arch
// times architecture steps of -gate (full_v2, two or all), allweight times
// weight steps of the all (DARTS-style) mode. -k keeps the first k
// candidates of the default list. The peak resident set size is read from
// getrusage at exit, so run one configuration per process.
//
// It imports the standard library and packages search and search/space.
package main
