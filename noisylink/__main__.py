from noisylink.cli import main

main()
