# The xDS agent for stacks that run no libgnaming code: grpc-java's and Node's own xDS clients (the
# demo's clients in demo/java and demo/node) call xds:///echo through `gnaming xds-agent`, against
# greeter servers registered through the Python binding in a real 3-member etcd from tests/harness
# (tests/xds/agent). The Java client's libraries come from Maven Central (`mvn package`), the Node
# client's from the npm registry (`npm ci` on the committed lock file); both are fetched only when
# missing or older than their sources.
TEST_TARGETS += test-xds-agent
APT_PACKAGES += etcd-server etcd-client maven nodejs openjdk-17-jdk-headless

XDS_JAVA_CLIENT := demo/java/target/xds-echo-client.jar
XDS_NODE_CLIENT := demo/node/node_modules/.package-lock.json
XDS_AGENT_PY := $(BUILD)/xds-agent/py
FETCH_TARGETS += xds-clients

.PHONY: xds-clients test-xds-agent

$(XDS_JAVA_CLIENT): demo/java/pom.xml $(wildcard demo/java/src/main/java/echo/*.java) examples/cpp/helloworld.proto
	mvn -q -B -f demo/java/pom.xml package

# Debian ships npm apart from nodejs; NodeSource's nodejs package brings its own.
$(XDS_NODE_CLIENT): demo/node/package.json demo/node/package-lock.json
	@command -v npm >/dev/null || scripts/install-deps npm
	cd demo/node && npm ci --prefer-offline --no-audit --no-fund --loglevel=error

xds-clients: $(XDS_JAVA_CLIENT) $(XDS_NODE_CLIENT)

test-xds-agent: cli python-install xds-clients
	@mkdir -p $(XDS_AGENT_PY)
	$(PY) -m grpc_tools.protoc -I examples/cpp --python_out=$(XDS_AGENT_PY) \
	  --grpc_python_out=$(XDS_AGENT_PY) examples/cpp/helloworld.proto
	GREETER_PY_DIR=$(abspath $(XDS_AGENT_PY)) timeout 300 $(ETCD_RUN) \
	  $(PY) -m pytest -p no:cacheprovider -q -s tests/xds/agent
