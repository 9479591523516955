from taxcheck.cli import main

main()
