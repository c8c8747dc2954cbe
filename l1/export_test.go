package l1

// EntryOverhead is entryOverhead, for the tests that check the charge.
const EntryOverhead = entryOverhead
