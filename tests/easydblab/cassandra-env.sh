# shellcheck shell=sh
# A model of conf/cassandra-env.sh: options of its own, then JVM_EXTRA_OPTS last.
JVM_OPTS="$JVM_OPTS -Xss256k"
JVM_OPTS="$JVM_OPTS -Dcassandra.jmx.local.port=7199"
JVM_OPTS="$JVM_OPTS $JVM_EXTRA_OPTS"
