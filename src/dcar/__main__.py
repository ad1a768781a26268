from dcar.cli import main

main()
