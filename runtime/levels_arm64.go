package runtime

// archLevelNames names the kernel levels of arm64: level 1 is NEON, there
// is no level 2.
var archLevelNames = [numLevels]string{"go", "neon", ""}
