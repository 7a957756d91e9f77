# shellcheck shell=sh disable=SC2034
# A model of bin/cassandra.in.sh on an easy-db-lab Cassandra host, for the installer tests.
# @ROOT@ is where the host's / lies (empty on a real host).
CASSANDRA_HOME="$(dirname "$0")/.."
CASSANDRA_CONF="$CASSANDRA_HOME/conf"
export CASSANDRA_HOME CASSANDRA_CONF

# Another vendor's agent, when installed, is set by assignment, not appended.
if [ -f '@ROOT@/usr/share/axonops/axon-cassandra-agent.jar' ]; then
    JVM_EXTRA_OPTS="-javaagent:@ROOT@/usr/share/axonops/axon-cassandra-agent.jar=/etc/axonops/axon-agent.yml"
fi

# The image's own Pyroscope block: it puts the agent into JVM_OPTS, which nodetool keeps too.
if [ -f '@ROOT@/usr/local/pyroscope/pyroscope.jar' ] && [ -n "$PYROSCOPE_SERVER_ADDRESS" ]; then
    JVM_OPTS="$JVM_OPTS -javaagent:@ROOT@/usr/local/pyroscope/pyroscope.jar"
    JVM_OPTS="$JVM_OPTS -Dpyroscope.application.name=cassandra"
    JVM_OPTS="$JVM_OPTS -Dpyroscope.server.address=$PYROSCOPE_SERVER_ADDRESS"
    JVM_OPTS="$JVM_OPTS -Dpyroscope.format=jfr"
    JVM_OPTS="$JVM_OPTS -Dpyroscope.profiler.event=${PYROSCOPE_PROFILER_EVENT:-cpu}"
    JVM_OPTS="$JVM_OPTS -Dpyroscope.profiler.alloc=512k"
    JVM_OPTS="$JVM_OPTS -Dpyroscope.profiler.lock=10ms"
    JVM_OPTS="$JVM_OPTS -Dpyroscope.labels=hostname=$(hostname),cluster=$CLUSTER_NAME"
fi
