"""What is read from ledgers and measurements: reports (`report`, `htmlreport`), `replay`,
`verify`, joined `segments`, a model's `accuracy` and k, correlated errors (`correlation`)
and the cost of a reliable step (`bench`). This file imports nothing, so heavy imports
(numpy, matplotlib) stay lazy."""
