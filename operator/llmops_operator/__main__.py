from llmops_operator.cli import main

raise SystemExit(main())
