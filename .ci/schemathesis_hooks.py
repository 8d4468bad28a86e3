# Loaded by .ci/schemathesis.sh through SCHEMATHESIS_HOOKS.
# The SourceCred import takes its ledger as application/x-ndjson, which schemathesis has no
# serializer for; the body's schema is a plain string, so send it the way text/plain is sent.
import schemathesis

schemathesis.serializer.alias("application/x-ndjson", "text/plain")
