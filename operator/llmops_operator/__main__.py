if __name__ == "__main__":  # a spawned worker process imports this module again, and must not run the CLI
    from llmops_operator.cli.main import main

    raise SystemExit(main())
