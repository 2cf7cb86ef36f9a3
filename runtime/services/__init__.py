"""Writes of the runtime plane, by subject. Each public function takes ``actor=`` (or says why
the portal acts by itself), checks who may call it, changes the rows and audits in the same
transaction."""
