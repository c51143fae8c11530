// Stack traces as runtimes print them, for the multiline tests. Each is one record the
// rules must produce; the corpora in test/fixtures/corpora/multiline add traces from Fluent Bit's
// examples (see test_support/corpora.ts).

export const JAVA_CHAINED = [
  'Exception in thread "main" java.lang.IllegalStateException: could not start',
  "\tat com.acme.App.start(App.java:41)",
  "\tat com.acme.App.main(App.java:12)",
  "Caused by: java.io.UncheckedIOException: config unreadable",
  "\tat com.acme.Config.load(Config.java:88)",
  "\t... 2 more",
  "\tSuppressed: java.lang.RuntimeException: close failed",
  "\t\tat com.acme.Config.close(Config.java:120)",
  "\t\t... 3 more",
  "Caused by: java.nio.file.NoSuchFileException: /etc/acme/app.yaml",
  "\tat java.base/sun.nio.fs.UnixException.translateToIOException(UnixException.java:92)",
  "\t... 12 common frames omitted",
];

/** Spring's `nested exception is:` and a bare exception name (no message) as the first line. */
export const JAVA_NESTED = [
  "org.springframework.beans.factory.BeanCreationException: Error creating bean",
  "\tnested exception is:",
  "java.lang.NullPointerException",
  "\tat com.acme.Repo.init(Repo.java:7)",
];

/** Node.js prints V8 stacks in the Java shape; the java rules take them too. */
export const NODE_ERROR = [
  "TypeError: Cannot read properties of undefined (reading 'id')",
  "    at handler (/app/server.js:10:20)",
  "    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)",
];

export const PYTHON_CHAINED = [
  "Traceback (most recent call last):",
  '  File "/app/main.py", line 10, in load',
  "    return json.loads(open(path).read())",
  "           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
  'FileNotFoundError: [Errno 2] No such file or directory: "/etc/app.json"',
  "",
  "During handling of the above exception, another exception occurred:",
  "",
  "Traceback (most recent call last):",
  '  File "/app/main.py", line 20, in <module>',
  "    main()",
  "app.errors.ConfigError: no configuration",
];

export const PYTHON_BARE = [
  "Traceback (most recent call last):",
  '  File "/app/loop.py", line 3, in <module>',
  "    time.sleep(10)",
  "KeyboardInterrupt",
];

export const GO_PANIC = [
  "panic: runtime error: invalid memory address or nil pointer dereference [recovered]",
  "\tpanic: runtime error: invalid memory address or nil pointer dereference",
  "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4b7a2d]",
  "",
  "goroutine 1 [running]:",
  "main.(*Server).handle(0x0, {0x55e1c0, 0xc000012345})",
  "\t/src/app/server.go:42 +0x2d",
  "main.main()",
  "\t/src/app/main.go:15 +0x85",
  "",
  "goroutine 18 gp=0xc000102a80 m=nil [chan receive, 3 minutes]:",
  "main.worker(0xc00001c0c0)",
  "\t/src/app/worker.go:9 +0x3b",
  "...additional frames elided...",
  "created by main.main in goroutine 1",
  "\t/src/app/main.go:12 +0x4f",
];

export const GO_FATAL = [
  "fatal error: concurrent map writes",
  "",
  "goroutine 7 [running]:",
  "main.store(...)",
  "\t/src/app/cache.go:30",
];
