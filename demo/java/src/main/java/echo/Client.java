// Java greeter client on xds:///echo: grpc-java's xDS client (io.grpc:grpc-xds) gets the address list
// from `gnaming xds-agent` through the bootstrap file named by GRPC_XDS_BOOTSTRAP. No libgnaming code
// runs in this process.
//
//     GRPC_XDS_BOOTSTRAP=FILE java -jar target/xds-echo-client.jar NAME [--target xds:///echo] [--interval MS]
//
// Calls SayHello in a loop (the reply names the answering server) and prints a JSON status line every
// quarter second, the demo's client protocol (demo/run.py); SIGTERM prints a last status and exits.
package echo;

import helloworld.Helloworld.HelloReply;
import helloworld.Helloworld.HelloRequest;
import io.grpc.CallOptions;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.ProtoUtils;
import io.grpc.stub.ClientCalls;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

public final class Client {
  // An xDS client learns no addresses through public API, so "answering" (servers that replied within
  // this window) stands for the list the client uses.
  private static final long ANSWERING_WINDOW_MS = 1000;

  // What protoc-gen-grpc-java would generate as GreeterGrpc.getSayHelloMethod(); written out here so
  // the build needs protoc only.
  private static final MethodDescriptor<HelloRequest, HelloReply> SAY_HELLO =
      MethodDescriptor.<HelloRequest, HelloReply>newBuilder()
          .setType(MethodDescriptor.MethodType.UNARY)
          .setFullMethodName(MethodDescriptor.generateFullMethodName("helloworld.Greeter", "SayHello"))
          .setRequestMarshaller(ProtoUtils.marshaller(HelloRequest.getDefaultInstance()))
          .setResponseMarshaller(ProtoUtils.marshaller(HelloReply.getDefaultInstance()))
          .build();

  private final String name;
  private final Map<String, Long> counts = new TreeMap<>();
  private final Map<String, Long> lastAnswer = new TreeMap<>();
  private final List<Long> failures = new ArrayList<>();
  private long ok;
  private long failed;
  private String lastError;

  private Client(String name) {
    this.name = name;
  }

  public static void main(String[] argv) throws InterruptedException {
    String name = null;
    String target = "xds:///echo";
    long intervalMs = 10;
    for (int i = 0; i < argv.length; i++) {
      if (argv[i].equals("--target") && i + 1 < argv.length) {
        target = argv[++i];
      } else if (argv[i].equals("--interval") && i + 1 < argv.length) {
        intervalMs = Long.parseLong(argv[++i]);
      } else if (name == null) {
        name = argv[i];
      } else {
        usage();
      }
    }
    if (name == null) {
      usage();
    }
    new Client(name).run(target, intervalMs);
  }

  private static void usage() {
    System.err.println("usage: Client NAME [--target xds:///echo] [--interval MS]");
    System.exit(2);
  }

  private void run(String target, long intervalMs) throws InterruptedException {
    ManagedChannel channel = Grpc.newChannelBuilder(target, InsecureChannelCredentials.create()).build();
    CountDownLatch stop = new CountDownLatch(1);
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      stop.countDown();
      try {
        stopped.await(3, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }));

    HelloRequest request = HelloRequest.newBuilder().setName(name).build();
    boolean waitForFirst = true; // only the first call waits for endpoints; later ones fail fast
    long nextStatus = System.nanoTime();
    while (stop.getCount() > 0) {
      try {
        // The first call also waits for the xDS client's start (seconds in a cold JVM).
        CallOptions options = waitForFirst
            ? CallOptions.DEFAULT.withWaitForReady().withDeadlineAfter(20, TimeUnit.SECONDS)
            : CallOptions.DEFAULT.withDeadlineAfter(2, TimeUnit.SECONDS);
        HelloReply reply = ClientCalls.blockingUnaryCall(channel, SAY_HELLO, options, request);
        waitForFirst = false;
        counts.merge(reply.getMessage(), 1L, Long::sum);
        lastAnswer.put(reply.getMessage(), System.currentTimeMillis());
        ok++;
      } catch (StatusRuntimeException e) {
        failed++;
        failures.add(System.currentTimeMillis());
        lastError = e.getStatus().getCode() + ": " + e.getStatus().getDescription();
      }
      if (System.nanoTime() >= nextStatus) {
        status();
        nextStatus += TimeUnit.MILLISECONDS.toNanos(250);
      }
      stop.await(intervalMs, TimeUnit.MILLISECONDS);
    }
    status();
    channel.shutdownNow();
    stopped.countDown();
  }

  private void status() {
    long now = System.currentTimeMillis();
    String answering = lastAnswer.entrySet().stream()
        .filter(e -> now - e.getValue() <= ANSWERING_WINDOW_MS)
        .map(e -> quote(e.getKey())).collect(Collectors.joining(","));
    System.out.println("{\"event\":\"status\",\"client\":" + quote(name) + ",\"lang\":\"java\""
        + ",\"answering\":[" + answering + "],\"last_answer\":" + object(lastAnswer)
        + ",\"counts\":" + object(counts) + ",\"ok\":" + ok + ",\"failed\":" + failed
        + ",\"failures\":" + failures + ",\"last_error\":" + (lastError == null ? "null" : quote(lastError)) + "}");
    System.out.flush();
    failures.clear();
  }

  private static String object(Map<String, Long> map) {
    return map.entrySet().stream().map(e -> quote(e.getKey()) + ":" + e.getValue())
        .collect(Collectors.joining(",", "{", "}"));
  }

  private static String quote(String s) {
    StringBuilder out = new StringBuilder("\"");
    for (char c : s.toCharArray()) {
      if (c == '"' || c == '\\') {
        out.append('\\').append(c);
      } else if (c < 0x20) {
        out.append(String.format("\\u%04x", (int) c));
      } else {
        out.append(c);
      }
    }
    return out.append('"').toString();
  }
}
